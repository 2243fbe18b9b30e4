/**
 * The emulated SDXI function: the worker entry (dist/sdxi-device.js) and the function model. It
 * owns nothing but what hardware would see: its BARs (SharedArrayBuffers at SDXI's offsets), the
 * RAM sections (bus addresses = physical addresses), its own address space (control structures)
 * and the data address spaces AKeys name by PASID. Everything it reads from software — registers,
 * tables, descriptors — is validated before use.
 */
import { isMainThread, workerData } from 'node:worker_threads';
import {
  DeviceClock,
  DMA_BIDIRECTIONAL,
  DMA_FROM_DEVICE,
  IommuView,
  RamView,
  runDeviceLoop,
  TimelineWriter,
  TL_DMA_COMPLETION,
  TL_DMA_DESC,
} from '@pagemig/dmaengine/device';
import { type ContextInfo, Fault, lookupContext } from './context_table.js';
import {
  ADM_CXT_START_NM,
  ADM_CXT_START_RS,
  ADM_CXT_STOP,
  DESC_BYTES,
  DESC_WORDS,
  DW0_CH,
  DW0_FE,
  DW0_TYPE_SHIFT,
  DW0_VL,
  TYPE_ADMIN,
} from './descriptor.js';
import {
  ERRLOG_ENT_BYTES,
  ERRLOG_ENT_WORDS,
  ERRLOG_ENTRIES_PER_UNIT,
  ErrClass,
  ErrReaction,
  ErrStep,
  ErrSubStep,
  encodeErrlog,
} from './errlog.js';
import { Phys } from './phys.js';
import {
  BAR0_BYTES,
  CTL0_GSR_MASK,
  cap0Value,
  cap1Value,
  EMU_BW_MBPS,
  EMU_BYTES,
  EMU_COPY_NS,
  EMU_DB_PENDING,
  EMU_DESCS,
  EMU_ERRORS,
  EMU_EXIT,
  EMU_LATENCY_NS,
  EMU_ORDER,
  EMU_ORDER_REVERSE,
  EMU_WORDS,
  ERR_CFG_EN,
  ERR_CTL_INTR,
  ERR_STS_ERR,
  ERR_STS_OVF,
  ERR_STS_STS,
  GSR_ACTIVE,
  GSR_RESET,
  GSV_ACTIVE,
  GSV_ERROR,
  GSV_STOP,
  MMIO_CAP0,
  MMIO_CAP1,
  MMIO_CTL0,
  MMIO_CTL2,
  MMIO_CXT_L2,
  MMIO_ERR_CFG,
  MMIO_ERR_CTL,
  MMIO_ERR_RD,
  MMIO_ERR_STS,
  MMIO_ERR_WRT,
  MMIO_STS0,
  MMIO_VERSION,
  maxCxtOf,
  opbOf,
  signalMsi,
  versionValue,
} from './regs.js';
import {
  CST_ER,
  CST_FLAGS,
  CXTV_ERR_FN,
  CXTV_RUN,
  CXTV_STOP_FN,
  CXTV_STOP_SW,
  STS_READ_INDEX,
  STS_STATE,
} from './tables.js';
import {
  type FunctionView,
  OP_ADMIN,
  OP_COPY,
  OP_INTR,
  OP_REPCOPY,
  OP_WRT_IMM,
  Op,
  validate,
} from './validate.js';

/** What the driver hands a function thread at start. */
export interface SdxiDeviceInit {
  kind: 'pagemig.sdxi';
  name: string;
  /** This function's id (CAP0.sfunc; AKeys naming another function need RKeys). */
  sfunc: number;
  bar0: SharedArrayBuffer;
  bar2: SharedArrayBuffer;
  sections: readonly SharedArrayBuffer[];
  sectionPfnShift: number;
  nrPages: number;
  /** The function's own IOMMU domain: context tables, rings, CST_BLKs, the error log. */
  iommu: SharedArrayBuffer;
  /** Data address spaces (IOMMU domains) by PASID; null where none is installed. */
  addressSpaces: readonly (SharedArrayBuffer | null)[];
  /** Where MSIs go: the host's interrupt line (absent: only the emulator counters). */
  irqLine?: SharedArrayBuffer;
  /** The machine's timeline and each context's track (by context id; -1: none). */
  timeline?: { buffer: SharedArrayBuffer; tracks: readonly number[] };
}

/** Descriptors and bytes one context may run before the function turns to the next context. */
const WINDOW = 64;
const WINDOW_BYTES = 16 << 20;
const w = (offset: number): number => offset >>> 2;
const q = (offset: number): number => offset >>> 3;
const nowNs = (): number => performance.now() * 1e6;

export class SdxiFunctionModel implements FunctionView {
  readonly phys: Phys;
  readonly space: IommuView;
  readonly spaces: (IommuView | null)[];
  readonly sfunc: number;
  opbAvl = 0;
  maxCxt = 0;
  private readonly r: Int32Array;
  private readonly r64: BigInt64Array;
  private readonly line: Int32Array | null;
  private gsv = GSV_STOP;
  /** Contexts with work to look at, in round-robin order. */
  private readonly ready = new Set<number>();
  private readonly fault = new Fault();
  private readonly win = new Int32Array(WINDOW * DESC_WORDS);
  private readonly ops = Array.from({ length: WINDOW }, () => new Op());
  /** The order a window's ops run in. */
  private readonly order = new Int32Array(WINDOW);
  private readonly imm: Uint8Array;
  /** The function's timing profile (EMU_BW_MBPS, EMU_LATENCY_NS), one clock for all contexts. */
  private readonly clock: DeviceClock;
  /** The timeline writer, and each context's track on it (by context id; -1: none). */
  private readonly tl: TimelineWriter | null;
  private readonly tracks: readonly number[];

  constructor(init: SdxiDeviceInit) {
    if (init.bar0.byteLength < BAR0_BYTES) throw new RangeError('sdxi: BAR 0 is too small');
    this.r = new Int32Array(init.bar0);
    this.r64 = new BigInt64Array(init.bar0);
    this.phys = new Phys(new RamView(init.sections, init.sectionPfnShift, init.nrPages));
    this.space = new IommuView(init.iommu, init.nrPages);
    this.spaces = init.addressSpaces.map((s) => (s ? new IommuView(s, init.nrPages) : null));
    this.line = init.irqLine ? new Int32Array(init.irqLine) : null;
    this.tl = init.timeline ? new TimelineWriter(init.timeline.buffer) : null;
    this.tracks = init.timeline?.tracks ?? [];
    this.sfunc = init.sfunc;
    this.imm = new Uint8Array(this.win.buffer);
    this.clock = new DeviceClock(
      this.r,
      EMU_WORDS,
      { bandwidthMBps: w(EMU_BW_MBPS), latencyNs: w(EMU_LATENCY_NS) },
      () => this.preempted(),
    );
    this.store(MMIO_CAP0, cap0Value(init.sfunc));
    this.store(MMIO_CAP1, cap1Value());
    this.store(MMIO_VERSION, versionValue());
    this.store(MMIO_STS0, GSV_STOP);
  }

  private load(off: number): number {
    return Number(BigInt.asUintN(64, Atomics.load(this.r64, q(off))));
  }

  private store(off: number, v: number): void {
    Atomics.store(this.r64, q(off), BigInt(v));
  }

  /** The function thread: work while there is any, else spin briefly and sleep on the MMIO sequence. */
  run(): void {
    runDeviceLoop(this.r, EMU_WORDS, () => this.step());
  }

  /** One look at the function: state requests, doorbells, one window of one context. */
  step(): boolean {
    if (!this.followStateRequest()) return false;
    const r = this.r;
    for (let k = 0; k < 2; k++) {
      let bits = Atomics.exchange(r, w(EMU_DB_PENDING) + k, 0);
      while (bits) {
        const b = 31 - Math.clz32(bits & -bits);
        bits &= bits - 1;
        this.ready.add(k * 32 + b);
      }
    }
    // The admin context first: a stop must not wait behind other contexts' throttled copies.
    const id = this.ready.has(0) ? 0 : this.ready.values().next().value;
    if (id === undefined) return false;
    this.ready.delete(id);
    if (id <= this.maxCxt && this.runContext(id)) this.ready.add(id);
    return true;
  }

  /**
   * Whether a throttled descriptor must be given up: the function is asked to stop or reset, its
   * thread to end, or the admin context has a doorbell (which may stop the descriptor's context).
   */
  private preempted(): boolean {
    const r = this.r;
    return (
      (this.load(MMIO_CTL0) & CTL0_GSR_MASK) !== GSR_ACTIVE ||
      Atomics.load(r, w(EMU_EXIT)) !== 0 ||
      (Atomics.load(r, w(EMU_DB_PENDING)) & 1) !== 0
    );
  }

  /** Moves fn_gsv toward CTL0.fn_gsr; true while the function is active. */
  private followStateRequest(): boolean {
    const gsr = this.load(MMIO_CTL0) & CTL0_GSR_MASK;
    if (gsr === GSR_RESET) {
      if (this.gsv !== GSV_STOP) this.setGsv(GSV_STOP);
      this.ready.clear();
      return false;
    }
    if (this.gsv === GSV_ERROR) return false;
    if (gsr === GSR_ACTIVE) {
      if (this.gsv === GSV_ACTIVE) return true;
      if (this.gsv !== GSV_STOP) return false;
      // Initializing: CTL2 may only enable what CAP1 offers.
      const ctl2 = this.load(MMIO_CTL2);
      const cap1 = this.load(MMIO_CAP1);
      this.opbAvl = opbOf(ctl2);
      this.maxCxt = maxCxtOf(ctl2);
      if ((this.opbAvl & ~opbOf(cap1)) !== 0 || this.maxCxt > maxCxtOf(cap1)) {
        this.fault.set(ErrStep.INTERNAL, ErrSubStep.VALIDATION, ErrClass.CONTEXT);
        this.fault.reaction = ErrReaction.FUNCTION_STOPPED;
        this.report(null, null, -1, null);
        return false;
      }
      this.setGsv(GSV_ACTIVE);
      return true;
    }
    // Soft or hard stop: nothing is ever half-done between steps, so both stop at once; every
    // running context is stopped by the function.
    if (this.gsv === GSV_ACTIVE) {
      const l2 = this.load(MMIO_CXT_L2);
      for (let c = 0; c <= this.maxCxt; c++) {
        const cx = lookupContext(this.phys, this.space, l2, c, this.fault);
        if (cx && this.stateOf(cx) === CXTV_RUN) this.setState(cx, CXTV_STOP_FN);
      }
      this.ready.clear();
      this.setGsv(GSV_STOP);
    }
    return false;
  }

  private setGsv(v: number): void {
    this.gsv = v;
    this.store(MMIO_STS0, v);
  }

  private stateOf(cx: ContextInfo): number {
    return this.phys.load32(cx.sts + STS_STATE) & 0xf;
  }

  private setState(cx: ContextInfo, state: number): void {
    const old = this.phys.load32(cx.sts + STS_STATE);
    this.phys.store32(cx.sts + STS_STATE, (old & ~0xf) | state);
  }

  /**
   * Runs one window of context `id`: the valid descriptors from its read index, up to the next
   * fence (a fenced descriptor waits for everything before it, so it opens the next window) or
   * admin descriptor (always alone), checked first, then run. True if it has more to do.
   */
  private runContext(id: number): boolean {
    const phys = this.phys;
    const fault = this.fault;
    const cx = lookupContext(phys, this.space, this.load(MMIO_CXT_L2), id, fault);
    // A context that is not running ignores its doorbell (a reachable one is not even checked).
    if (cx && this.stateOf(cx) !== CXTV_RUN) return false;
    if (!cx || fault.step) {
      if (fault.step) this.report(id, null, -1, cx);
      return false;
    }
    const n = BigInt(cx.entries);
    const rd = phys.load64n(cx.sts + STS_READ_INDEX);
    const wr = phys.load64n(cx.writeIndex);
    if (wr < rd || wr - rd > n) {
      fault.set(ErrStep.WRITE_INDEX, ErrSubStep.VALIDATION, ErrClass.INDEX);
      this.report(id, rd, -1, cx);
      return false;
    }
    const avail = Number(wr - rd);
    const slot0 = Number(rd % n);
    const mask = cx.entries - 1;
    const win = this.win;
    let count = 0; // descriptors checked and fit to run
    let failAt = -1;
    let bytes = 0;
    let inChain = false;
    let more = true; // false once the context waits for a doorbell
    for (let i = 0; ; i++) {
      if (i === avail) {
        more = false;
        break;
      }
      if (i === WINDOW) break;
      const at = cx.ring + ((slot0 + i) & mask) * DESC_BYTES;
      const sub = phys.reach(this.space, at, DESC_BYTES, DMA_BIDIRECTIONAL);
      if (sub) {
        fault.set(ErrStep.DESCRIPTOR, sub, ErrClass.ADDRESS);
        this.ops[i]!.unit = inChain ? this.ops[i - 1]!.unit : i;
        this.ops[i]!.csb = -1;
        failAt = i;
        break;
      }
      const dw0 = phys.load32(at);
      if (!(dw0 & DW0_VL)) {
        more = false;
        break;
      }
      const admin = ((dw0 >>> DW0_TYPE_SHIFT) & 0x7ff) === TYPE_ADMIN;
      if (i > 0 && !inChain && (dw0 & DW0_FE || admin)) break;
      phys.fetch16(at, win, i * DESC_WORDS);
      const op = this.ops[i]!;
      op.unit = inChain ? this.ops[i - 1]!.unit : i;
      if (!validate(this, cx, win, i * DESC_WORDS, op, fault)) {
        failAt = i;
        break;
      }
      count = i + 1;
      inChain = (dw0 & DW0_CH) !== 0 && !admin;
      if (admin) {
        if (!this.checkAdmin(op)) failAt = i;
        break;
      }
      bytes += op.len;
      if (!inChain && bytes >= WINDOW_BYTES) break;
    }
    // A chain runs whole or not at all: a failure inside it, or a chain not yet complete, holds
    // the whole chain back.
    let run = count;
    if (failAt >= 0) run = this.ops[failAt]!.unit;
    else if (inChain) {
      run = this.ops[count - 1]!.unit;
      more = false;
    }
    // Preempted: the rest waits for the context's next turn, if it still runs then.
    if (run > 0 && this.execute(cx, slot0, mask, run, rd) < run) return true;
    if (failAt >= 0) {
      this.report(id, rd + BigInt(failAt), this.ops[failAt]!.csb, cx);
      return false;
    }
    return more && run === count;
  }

  /** Admin range checks that depend on the target contexts' state (done when the admin op runs). */
  private checkAdmin(op: Op): boolean {
    if (op.kind !== OP_ADMIN || (op.sub !== ADM_CXT_START_NM && op.sub !== ADM_CXT_START_RS)) return true;
    const l2 = this.load(MMIO_CXT_L2);
    const probe = new Fault();
    for (let c = op.first; c <= op.last; c++) {
      const cx = lookupContext(this.phys, this.space, l2, c, probe);
      const s = cx && !probe.step ? this.stateOf(cx) : -1;
      const ok = s === CXTV_RUN || s === CXTV_STOP_SW || s === CXTV_STOP_FN;
      if (!ok && !(s === CXTV_ERR_FN && op.sub === ADM_CXT_START_RS))
        return this.fault.set(ErrStep.DESCRIPTOR, ErrSubStep.VALIDATION, ErrClass.CONTEXT);
    }
    return true;
  }

  /**
   * Runs window slots [0, run): chains in their order, the rest in EMU_ORDER, each copy held for
   * its timing profile. Then it clears vl of the consumed slots (they read as invalid when the
   * ring comes round again), advances the read index, and only then signals the completion blocks
   * and interrupts, in the order the descriptors ran: a driver that sees a descriptor complete
   * sees the index past it, so it may reuse the slot at once. A preempted hold (see `preempted`)
   * consumes only the chains before the held one (in ring order; nothing in reverse order): the
   * rest stays in the ring, valid, and what of it ran leaves its destinations partly written, as
   * an abandoned copy does. Returns the slots consumed.
   */
  private execute(cx: ContextInfo, slot0: number, mask: number, run: number, rd: bigint): number {
    const phys = this.phys;
    const order = this.order;
    const reverse = Atomics.load(this.r, w(EMU_ORDER)) === EMU_ORDER_REVERSE;
    if (!reverse) {
      for (let i = 0; i < run; i++) order[i] = i;
    } else {
      let k = 0;
      for (let end = run; end > 0; ) {
        const start = this.ops[end - 1]!.unit;
        for (let i = start; i < end; i++) order[k++] = i;
        end = start;
      }
    }
    let ran = 0;
    let moved = 0;
    let copyNs = 0;
    // While the timeline records: a `dma_desc` span per copy descriptor on its context's track.
    const tl = this.tl?.on ? this.tl : null;
    const track = tl !== null ? (this.tracks[cx.id] ?? -1) : -1;
    for (; ran < run; ran++) {
      const op = this.ops[order[ran]!]!;
      const copy = op.kind === OP_COPY || op.kind === OP_REPCOPY;
      const tlBegin = track >= 0 && copy ? tl!.now() : -1;
      const modelNs = copy ? this.clock.modelNs(op.len) : 0;
      if (modelNs > 0 && !this.clock.hold(modelNs, op.len)) break;
      const t0 = nowNs();
      moved += this.apply(order[ran]!);
      const took = nowNs() - t0;
      copyNs += took;
      if (copy) this.clock.copied(op.len, took);
      if (tlBegin >= 0) tl!.record(TL_DMA_DESC, track, tlBegin, tl!.now(), tl!.tag(track), op.len, 0, 1);
    }
    const done = ran === run ? run : reverse ? 0 : this.ops[ran]!.unit;
    for (let i = 0; i < done; i++) phys.and32(cx.ring + ((slot0 + i) & mask) * DESC_BYTES, ~DW0_VL);
    if (done) phys.store64n(cx.sts + STS_READ_INDEX, rd + BigInt(done));
    for (let k = 0; k < ran; k++) {
      if (order[k]! >= done) continue;
      const op = this.ops[order[k]!]!;
      if (op.csb >= 0) phys.signal(op.csb);
      // After the completion block: a handler the interrupt wakes sees this descriptor done.
      if (op.kind === OP_INTR && op.vector >= 0) {
        signalMsi(this.r, op.vector, this.line);
        if (track >= 0) {
          const t = tl!.now();
          tl!.record(TL_DMA_COMPLETION, track, t, t, tl!.tag(track), 0);
        }
      }
    }
    Atomics.add(this.r, w(EMU_DESCS), done);
    if (moved) {
      Atomics.add(this.r64, q(EMU_BYTES), BigInt(moved));
      Atomics.add(this.r64, q(EMU_COPY_NS), BigInt(Math.round(copyNs)));
    }
    return done;
  }

  /** What validated op `i` does to memory and contexts; returns the bytes it wrote. */
  private apply(i: number): number {
    const op = this.ops[i]!;
    const ram = this.phys.ram;
    switch (op.kind) {
      case OP_COPY:
        ram.copy(op.dst, op.src, op.len);
        return op.len;
      case OP_REPCOPY:
        for (let o = 0; o < op.len; o += 4096) ram.copy(op.dst + o, op.src, 4096);
        return op.len;
      case OP_WRT_IMM: {
        const at = (i * DESC_WORDS + 6) * 4;
        ram.write(op.dst, this.imm.subarray(at, at + op.len));
        return op.len;
      }
      case OP_ADMIN:
        this.admin(op);
        return 0;
      default:
        return 0;
    }
  }

  private admin(op: Op): void {
    if (op.sub !== ADM_CXT_STOP && op.sub !== ADM_CXT_START_NM && op.sub !== ADM_CXT_START_RS) return;
    const l2 = this.load(MMIO_CXT_L2);
    const probe = new Fault();
    for (let c = op.first; c <= op.last; c++) {
      const cx = lookupContext(this.phys, this.space, l2, c, probe);
      if (!cx || probe.step) continue; // stop skips contexts that do not exist
      if (op.sub === ADM_CXT_STOP) {
        // The function runs one window at a time: nothing of this context is in flight.
        this.setState(cx, CXTV_STOP_SW);
        this.ready.delete(c);
      } else {
        if (this.stateOf(cx) !== CXTV_RUN) this.setState(cx, CXTV_RUN);
        this.ready.add(c);
      }
    }
  }

  /**
   * Reports `this.fault`: an error-log record, the context's error state (reaction "context
   * stopped"), the failing descriptor's CST_BLK (ER, then the signal), ERR_STS and its interrupt,
   * in that order, so software that sees any of them finds what came before.
   */
  private report(cxt: number | null, dscIndex: bigint | null, csb: number, cx: ContextInfo | null): void {
    const f = this.fault;
    Atomics.add(this.r, w(EMU_ERRORS), 1);
    const sts = this.log(cxt, dscIndex);
    if (f.reaction === ErrReaction.CONTEXT_STOPPED && cx) this.setState(cx, CXTV_ERR_FN);
    if (f.reaction === ErrReaction.FUNCTION_STOPPED) {
      this.setGsv(GSV_ERROR);
      this.ready.clear();
    }
    if (csb >= 0) {
      this.phys.or32(csb + CST_FLAGS, CST_ER | 0);
      this.phys.signal(csb);
    }
    // Last, so the handler it wakes finds the record, the state and ER in place: ERR_STS, and
    // the interrupt if sts went 0 -> 1 (a driver that cleared it since then gets a new one).
    const before = Number(Atomics.or(this.r64, q(MMIO_ERR_STS), BigInt(sts)));
    if (!(before & ERR_STS_STS) && this.load(MMIO_ERR_CTL) & ERR_CTL_INTR) signalMsi(this.r, 0, this.line);
  }

  /** Appends a record to the error log (MMIO_ERR_CFG); returns the ERR_STS bits to set. */
  private log(cxt: number | null, dscIndex: bigint | null): number {
    const f = this.fault;
    let sts = ERR_STS_STS;
    const cfg = this.load(MMIO_ERR_CFG);
    const entries = ((cfg >>> 1) & 0x1f) * ERRLOG_ENTRIES_PER_UNIT;
    if (!(cfg & ERR_CFG_EN) || entries === 0) sts |= ERR_STS_ERR;
    else {
      const wrt = this.load(MMIO_ERR_WRT);
      if (wrt - this.load(MMIO_ERR_RD) >= entries) sts |= ERR_STS_OVF;
      else {
        const at = cfg - (cfg % 4096) + (wrt % entries) * ERRLOG_ENT_BYTES;
        if (this.phys.reach(this.space, at, ERRLOG_ENT_BYTES, DMA_FROM_DEVICE)) sts |= ERR_STS_ERR;
        else {
          encodeErrlog(
            {
              step: f.step,
              subStep: f.subStep,
              reaction: f.reaction,
              cxt,
              dscIndex,
              buf: f.buf,
              errClass: f.errClass,
            },
            this.phys.ram.words32(at, ERRLOG_ENT_WORDS),
          );
          this.store(MMIO_ERR_WRT, wrt + 1);
        }
      }
    }
    return sts;
  }
}

if (!isMainThread && (workerData as SdxiDeviceInit | undefined)?.kind === 'pagemig.sdxi') {
  new SdxiFunctionModel(workerData as SdxiDeviceInit).run();
}
