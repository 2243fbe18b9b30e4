/**
 * A small discrete-event model of copy lanes (threads, DMA channels) sharing bandwidth limits.
 *
 * Each lane works through its segments one after another: a segment first spends `latency`
 * seconds that use no bandwidth (descriptor fetch, IOMMU walk), then moves `bytes` along the lane's
 * path. A path lists resources (a core, a core complex, a socket's fabric, a link, a DMA channel)
 * with a weight: the bytes that resource carries per byte copied (2 for a CPU store across a link:
 * read-for-ownership plus write-back). Rates change only when a transfer starts or ends; between
 * two such events every active transfer runs at
 *
 *   rate = (sum over its path of share_r^-p)^(-1/p),   share_r = capacity_r / (active weight on r)
 *
 * a soft minimum of its fair shares. p (`sharpness`) -> infinity is plain max-min sharing; a finite
 * p models the loaded latency that slows flows before a limit is reached (memory-level
 * parallelism), which the CPU placement table shows. Every rate stays at or below its share, so no
 * resource ever carries more than its capacity.
 */

export interface Resource {
  readonly name: string;
  /** Bytes per second. */
  readonly capacity: number;
}

export interface PathHop {
  readonly resource: number;
  readonly weight: number;
}

export interface Segment {
  readonly latency: number;
  readonly bytes: number;
}

export interface Lane {
  /** When the lane may start (s), e.g. after the CPU queued its work item. */
  readonly start: number;
  readonly path: readonly PathHop[];
  readonly segments: readonly Segment[];
}

/** Bounds the events per lane: consecutive chunks are merged into at most this many segments. */
export const MAX_SEGMENTS_PER_LANE = 16;

/**
 * Merges chunks (copies of folios or folio slices, in order) into at most MAX_SEGMENTS_PER_LANE
 * segments of equal chunk count, keeping total latency and bytes.
 */
export function segmentsOf(chunks: number, latency: number, bytes: number): Segment[] {
  if (chunks <= 0) return [];
  const n = Math.min(chunks, MAX_SEGMENTS_PER_LANE);
  const out: Segment[] = [];
  for (let i = 0; i < n; i++) {
    const k = Math.floor((chunks * (i + 1)) / n) - Math.floor((chunks * i) / n);
    out.push({ latency: k * latency, bytes: k * bytes });
  }
  return out;
}

const EPS = 1e-12;

/** Time (s) until every lane has finished; resources with no traffic never limit anything. */
export function makespan(resources: readonly Resource[], lanes: readonly Lane[], sharpness: number): number {
  const n = lanes.length;
  const seg = new Int32Array(n); // current segment
  const inXfer = new Uint8Array(n);
  const done = new Uint8Array(n);
  const waitUntil = new Float64Array(n);
  const left = new Float64Array(n); // bytes left in the current transfer
  const rate = new Float64Array(n);
  const load = new Float64Array(resources.length);
  let t = 0;
  let end = 0;
  let finished = 0;
  for (let i = 0; i < n; i++) {
    const s = lanes[i]!.segments[0];
    if (!s) {
      done[i] = 1;
      finished++;
      end = Math.max(end, lanes[i]!.start);
    } else waitUntil[i] = lanes[i]!.start + s.latency;
  }
  // Paths flattened: hop h of lane i is hopRes/hopW[hopStart[i] + h]; capacities inverted once.
  const hopStart = new Int32Array(n + 1);
  for (let i = 0; i < n; i++) hopStart[i + 1] = hopStart[i]! + lanes[i]!.path.length;
  const hopRes = new Int32Array(hopStart[n]!);
  const hopW = new Float64Array(hopStart[n]!);
  lanes.forEach((l, i) => {
    l.path.forEach((h, j) => {
      hopRes[hopStart[i]! + j] = h.resource;
      hopW[hopStart[i]! + j] = h.weight;
    });
  });
  const invCap = Float64Array.from(resources, (r) => 1 / r.capacity);
  while (finished < n) {
    load.fill(0);
    for (let i = 0; i < n; i++) {
      if (!inXfer[i]) continue;
      for (let h = hopStart[i]!; h < hopStart[i + 1]!; h++) load[hopRes[h]!]! += hopW[h]!;
    }
    let next = Number.POSITIVE_INFINITY;
    for (let i = 0; i < n; i++) {
      if (done[i]) continue;
      if (!inXfer[i]) {
        next = Math.min(next, waitUntil[i]!);
        continue;
      }
      // 1 / rate = ||load_r / capacity_r||_p, scaled by its largest term so x^p cannot underflow.
      let max = 0;
      for (let h = hopStart[i]!; h < hopStart[i + 1]!; h++)
        max = Math.max(max, load[hopRes[h]!]! * invCap[hopRes[h]!]!);
      let sum = 0;
      for (let h = hopStart[i]!; h < hopStart[i + 1]!; h++) {
        sum += ((load[hopRes[h]!]! * invCap[hopRes[h]!]!) / max) ** sharpness;
      }
      rate[i] = max > 0 ? 1 / (max * sum ** (1 / sharpness)) : Number.POSITIVE_INFINITY;
      next = Math.min(next, t + left[i]! / rate[i]!);
    }
    const dt = next - t;
    t = next;
    for (let i = 0; i < n; i++) {
      if (done[i]) continue;
      if (inXfer[i]) {
        left[i]! -= rate[i]! * dt;
        if (left[i]! > EPS * (1 + lanes[i]!.segments[seg[i]!]!.bytes)) continue;
        inXfer[i] = 0;
        const s = lanes[i]!.segments[++seg[i]!];
        if (!s) {
          done[i] = 1;
          finished++;
          end = Math.max(end, t);
        } else waitUntil[i] = t + s.latency;
      } else if (waitUntil[i]! <= t + EPS) {
        const s = lanes[i]!.segments[seg[i]!]!;
        if (s.bytes > 0) {
          inXfer[i] = 1;
          left[i] = s.bytes;
        } else {
          const nextSeg = lanes[i]!.segments[++seg[i]!];
          if (!nextSeg) {
            done[i] = 1;
            finished++;
            end = Math.max(end, t);
          } else waitUntil[i] = t + nextSeg.latency;
        }
      }
    }
  }
  return end;
}
