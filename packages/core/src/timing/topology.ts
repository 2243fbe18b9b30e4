import type { PathHop, Resource } from './bandwidth_sharing.js';
import type { HardwareProfile } from './profile.js';

/** How copy threads are laid out on CPUs (the series' `cpuselect` test knob). */
export type Placement = 'spread' | 'packed';

/** A logical CPU's place: logical CPUs past the core count are SMT siblings of cores 0.. */
export interface CpuPlace {
  core: number;
  ccd: number;
  socket: number;
}

const GB = 1e9;

export function cpuPlace(p: HardwareProfile, cpu: number): CpuPlace {
  const t = p.topology;
  const cores = t.sockets * t.ccdsPerSocket * t.coresPerCcd;
  const core = cpu % cores;
  const ccd = Math.floor(core / t.coresPerCcd);
  return { core, ccd, socket: Math.floor(ccd / t.ccdsPerSocket) };
}

/**
 * Logical CPUs of `threads` copy threads: 'spread' steps by one core complex (0, 8, 16, ...; the
 * series' list for one CPU per CCD), 'packed' fills CPUs in order (0..N-1). Past the last logical
 * CPU the list wraps.
 */
export function placeThreads(p: HardwareProfile, threads: number, placement: Placement): number[] {
  const t = p.topology;
  const logical = t.sockets * t.ccdsPerSocket * t.coresPerCcd * t.threadsPerCore;
  const step = placement === 'spread' ? t.coresPerCcd : 1;
  return Array.from({ length: threads }, (_, i) => {
    const c = i * step;
    return (c % logical) + Math.floor(c / logical);
  });
}

/** The first logical CPU of a socket: where the migrating task runs (on the source node's socket). */
export function firstCpuOf(p: HardwareProfile, socket: number): number {
  return socket * p.topology.ccdsPerSocket * p.topology.coresPerCcd;
}

/** Builds resources on demand and the weighted paths copies take through them. */
export class ResourceMap {
  readonly resources: Resource[] = [];
  private readonly index = new Map<string, number>();

  constructor(private readonly p: HardwareProfile) {}

  private get(name: string, gbps: number): number {
    let i = this.index.get(name);
    if (i === undefined) {
      i = this.resources.length;
      this.resources.push({ name, capacity: gbps * GB });
      this.index.set(name, i);
    }
    return i;
  }

  /**
   * Hops crossed moving data between `node`'s memory and an agent on `socket`: the socket link
   * when the node is on the other socket, and the node's own link (CXL) if it has one.
   */
  private memoryHops(node: number, socket: number, weight: number, out: PathHop[]): void {
    const p = this.p;
    const n = p.nodes[node]!;
    if (n.socket !== socket && p.socketLink !== undefined) {
      out.push({ resource: this.get(`link:${p.socketLink}`, p.links[p.socketLink]!.GBps), weight });
    }
    if (n.link !== undefined)
      out.push({ resource: this.get(`link:${n.link}`, p.links[n.link]!.GBps), weight });
  }

  /** A CPU copy on `cpu` from node `from` to node `to`: core (SMT siblings share it), CCD, socket, links. */
  cpuPath(cpu: number, from: number, to: number): PathHop[] {
    const p = this.p;
    const c = cpuPlace(p, cpu);
    const out: PathHop[] = [
      { resource: this.get(`core:${c.core}`, p.cpu.threadGBps), weight: 1 },
      { resource: this.get(`ccd:${c.ccd}`, p.cpu.ccdGBps), weight: 1 },
      { resource: this.get(`socket:${c.socket}`, p.cpu.socketGBps), weight: 1 },
    ];
    this.memoryHops(from, c.socket, 1, out);
    this.memoryHops(to, c.socket, p.cpu.writeLinkFactor, out);
    return merge(out);
  }

  /** A DMA channel of `engine` copying from `from` to `to`: the channel, the engine fabric, links. */
  dmaPath(engine: string, channel: number, from: number, to: number): PathHop[] {
    const e = this.p.dma[engine]!;
    const out: PathHop[] = [{ resource: this.get(`dma:${engine}:${channel}`, e.channelGBps), weight: 1 }];
    if (e.aggregateGBps !== undefined)
      out.push({ resource: this.get(`dma:${engine}`, e.aggregateGBps), weight: 1 });
    this.memoryHops(from, e.socket, 1, out);
    this.memoryHops(to, e.socket, 1, out);
    return merge(out);
  }
}

/** One hop per resource (a copy within a CXL node crosses its link twice). */
function merge(hops: PathHop[]): PathHop[] {
  const m = new Map<number, number>();
  for (const h of hops) m.set(h.resource, (m.get(h.resource) ?? 0) + h.weight);
  return [...m].map(([resource, weight]) => ({ resource, weight }));
}
