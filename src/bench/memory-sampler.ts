// Memory of a cold start, sampled densely enough to catch the peak of a 50 ms load: a sampler thread reads
// /proc/self/status (VmRSS, RssAnon, RssFile) every millisecond while a window is open. A thread, not a
// timer, because the instance's main thread is busy scheduling the pipeline and a timer there would sample
// only when the event loop is free, i.e. mostly not at the peak. The thread is plain JavaScript evaluated
// from a string (no TypeScript loader to start: it is online in ~30 ms), idle on a futex between windows.
// RssFile matters: onnxruntime maps external weights, so they show up as shared page-cache pages, while
// RssAnon is the private memory that limits how many instances fit on a machine.
import { Worker } from "node:worker_threads";
import { readProcStatus, type ProcStatus } from "../metrics/proc-memory.js";
import { now } from "../metrics/trace.js";

/** One sample, `t` on the clock of src/metrics/trace.ts (milliseconds). */
export interface MemorySample extends ProcStatus {
  t: number;
}

/** Main thread states shared with the sampler thread (control[STATE]). */
const IDLE = 0;
const RUNNING = 1;
const CLOSING = 2;
/** Indices into the control array: state, samples written, windows started and finished, interval (ms). */
const STATE = 0;
const COUNT = 1;
const STARTED = 2;
const FINISHED = 3;
const INTERVAL = 4;
/** Samples kept per window by default (16 s at 1 ms); when full, the thread halves them (keeping the
 * larger RSS of each pair) and doubles its interval. */
const CAPACITY = 16384;
/** Float64 slots: three running peaks, then [t, rss, anon, file] per sample. */
const PEAKS = 3;
const STRIDE = 4;

/**
 * The sampler thread. NOTE: `eval: true` runs the code as a CommonJS script, hence `require`. It re-reads
 * one open /proc/self/status with pread at offset 0 (procfs regenerates the text), into a reused buffer.
 * Its field scan is the same as parseProcStatus's (src/metrics/proc-memory.ts);
 * test/bench/memory-sampler.test.ts checks the two agree.
 */
const SAMPLER_SOURCE = `
const { workerData } = require("node:worker_threads");
const { openSync, readSync } = require("node:fs");
const { performance } = require("node:perf_hooks");
const { control, data, capacity, intervalMs } = workerData;
const ctl = new Int32Array(control);
const out = new Float64Array(data);
const fd = openSync("/proc/self/status", "r");
const buf = Buffer.alloc(16384);
function field(text, label) {
  const i = text.indexOf("\\n" + label);
  return i < 0 ? 0 : parseInt(text.slice(i + label.length + 1), 10) * 1024;
}
for (;;) {
  Atomics.wait(ctl, ${STATE}, ${IDLE});
  const state = Atomics.load(ctl, ${STATE});
  if (state === ${CLOSING}) break;
  if (state !== ${RUNNING}) continue;
  Atomics.add(ctl, ${STARTED}, 1);
  let n = 0;
  let interval = intervalMs;
  Atomics.store(ctl, ${INTERVAL}, interval);
  out[0] = 0; out[1] = 0; out[2] = 0;
  while (Atomics.load(ctl, ${STATE}) === ${RUNNING}) {
    const text = buf.toString("latin1", 0, readSync(fd, buf, 0, buf.length, 0));
    if (n === capacity) {
      for (let i = 0; i < capacity / 2; i++) {
        const a = ${PEAKS} + 2 * i * ${STRIDE};
        const b = a + ${STRIDE};
        const src = out[b + 1] > out[a + 1] ? b : a;
        out.copyWithin(${PEAKS} + i * ${STRIDE}, src, src + ${STRIDE});
      }
      n = capacity / 2;
      interval *= 2;
      Atomics.store(ctl, ${INTERVAL}, interval);
    }
    const o = ${PEAKS} + n * ${STRIDE};
    out[o] = performance.timeOrigin + performance.now();
    out[o + 1] = field(text, "VmRSS:");
    out[o + 2] = field(text, "RssAnon:");
    out[o + 3] = field(text, "RssFile:");
    for (let k = 0; k < 3; k++) if (out[o + 1 + k] > out[k]) out[k] = out[o + 1 + k];
    n++;
    Atomics.store(ctl, ${COUNT}, n);
    Atomics.wait(ctl, ${STATE}, ${RUNNING}, interval);
  }
  Atomics.add(ctl, ${FINISHED}, 1);
  Atomics.notify(ctl, ${FINISHED});
}
`;

/** What a window recorded. */
export interface MemoryWindow {
  /** Samples in time order: the main thread's at open and close, the sampler thread's in between. */
  samples: MemorySample[];
  /** Memory when the window opened. */
  baseline: ProcStatus;
  /** The largest value of each field over the window (each field's own maximum). */
  peak: ProcStatus;
  /** Main-thread `process.memoryUsage().arrayBuffers`: [t, bytes], sampled by a timer. */
  arrayBuffers: [number, number][];
  peakArrayBuffersBytes: number;
  /** Sampling interval the thread ended with (it doubles each time its buffer fills). */
  intervalMs: number;
}

/** A sampler thread of this process; open a window around each cold start. */
export class MemorySampler {
  private readonly control = new Int32Array(new SharedArrayBuffer(5 * 4));
  private readonly data: Float64Array;
  private worker: Worker | undefined;
  private open:
    { baseline: MemorySample; timer: NodeJS.Timeout; arrayBuffers: [number, number][] } | undefined;

  private constructor(
    private readonly intervalMs: number,
    capacity: number,
  ) {
    this.data = new Float64Array(new SharedArrayBuffer((PEAKS + capacity * STRIDE) * 8));
  }

  /**
   * Starts the sampler thread (outside any measurement): every `intervalMs` (an integer) while a window is
   * open, keeping at most `capacity` samples per window (see CAPACITY).
   */
  static async start(intervalMs = 1, capacity = CAPACITY): Promise<MemorySampler> {
    if (!Number.isInteger(intervalMs) || intervalMs < 1)
      throw new RangeError(`the sampling interval must be a whole number of ms >= 1, found ${intervalMs}`);
    if (!Number.isInteger(capacity) || capacity < 2 || capacity % 2 !== 0)
      throw new RangeError(`the sample capacity must be an even integer >= 2, found ${capacity}`);
    const sampler = new MemorySampler(intervalMs, capacity);
    const worker = new Worker(SAMPLER_SOURCE, {
      eval: true,
      execArgv: [],
      workerData: {
        control: sampler.control.buffer,
        data: sampler.data.buffer,
        capacity,
        intervalMs,
      },
    });
    await new Promise<void>((resolve, reject) => {
      worker.once("online", resolve);
      worker.once("error", reject);
    });
    // The thread must never keep an instance alive on its own.
    worker.unref();
    sampler.worker = worker;
    return sampler;
  }

  /** Opens a window: records a baseline sample and wakes the sampler thread. */
  begin(): void {
    if (!this.worker) throw new Error("the memory sampler is closed");
    if (this.open) throw new Error("a memory window is open already");
    const baseline = { t: now(), ...readProcStatus() };
    const arrayBuffers: [number, number][] = [[baseline.t, process.memoryUsage().arrayBuffers]];
    const timer = setInterval(() => arrayBuffers.push([now(), process.memoryUsage().arrayBuffers]), 2);
    this.open = { baseline, timer, arrayBuffers };
    Atomics.store(this.control, COUNT, 0);
    Atomics.store(this.control, STATE, RUNNING);
    Atomics.notify(this.control, STATE);
  }

  /** Samples the thread has taken in the open window so far. */
  get threadSamples(): number {
    return this.open ? Atomics.load(this.control, COUNT) : 0;
  }

  /** The thread's current sampling interval in the open window (it doubles each time its buffer fills). */
  get threadIntervalMs(): number {
    return this.open ? Atomics.load(this.control, INTERVAL) : this.intervalMs;
  }

  /** Closes the window and returns what it recorded. */
  end(): MemoryWindow {
    const open = this.open;
    if (!open) throw new Error("no memory window is open");
    this.open = undefined;
    clearInterval(open.timer);
    Atomics.store(this.control, STATE, IDLE);
    Atomics.notify(this.control, STATE);
    // The thread counts a window as started before it writes anything and as finished after its last
    // sample (tens of µs after it sees IDLE); a window it never saw leaves the counts equal. The deadline
    // only guards against a thread that died.
    const deadline = Date.now() + 1000;
    for (;;) {
      const finished = Atomics.load(this.control, FINISHED);
      if (finished === Atomics.load(this.control, STARTED) || Date.now() > deadline) break;
      Atomics.wait(this.control, FINISHED, finished, 10);
    }
    const last = { t: now(), ...readProcStatus() };
    open.arrayBuffers.push([last.t, process.memoryUsage().arrayBuffers]);
    const count = Atomics.load(this.control, COUNT);
    const samples: MemorySample[] = [open.baseline];
    for (let i = 0; i < count; i++) {
      const o = PEAKS + i * STRIDE;
      samples.push({
        t: this.data[o]!,
        rssBytes: this.data[o + 1]!,
        rssAnonBytes: this.data[o + 2]!,
        rssFileBytes: this.data[o + 3]!,
      });
    }
    samples.push(last);
    const peakOf = (k: keyof ProcStatus, slot: number) =>
      Math.max(open.baseline[k], last[k], count > 0 ? this.data[slot]! : 0);
    return {
      samples,
      baseline: {
        rssBytes: open.baseline.rssBytes,
        rssAnonBytes: open.baseline.rssAnonBytes,
        rssFileBytes: open.baseline.rssFileBytes,
      },
      peak: {
        rssBytes: peakOf("rssBytes", 0),
        rssAnonBytes: peakOf("rssAnonBytes", 1),
        rssFileBytes: peakOf("rssFileBytes", 2),
      },
      arrayBuffers: open.arrayBuffers,
      peakArrayBuffersBytes: Math.max(...open.arrayBuffers.map(([, b]) => b)),
      intervalMs: count > 0 ? Atomics.load(this.control, INTERVAL) : this.intervalMs,
    };
  }

  /** Stops the sampler thread. */
  async close(): Promise<void> {
    const worker = this.worker;
    if (!worker) return;
    this.worker = undefined;
    if (this.open) this.end();
    worker.ref();
    Atomics.store(this.control, STATE, CLOSING);
    Atomics.notify(this.control, STATE);
    await new Promise<void>((resolve) => {
      worker.once("exit", () => resolve());
    });
  }
}

/**
 * At most `maxPoints` items covering the same time span: each bucket of consecutive items is represented
 * by its largest (by `size`; a memory sample's RSS by default), so the peak survives (for charts and raw
 * data files).
 */
export function downsample(samples: readonly MemorySample[], maxPoints: number): MemorySample[];
export function downsample<T>(items: readonly T[], maxPoints: number, size: (item: T) => number): T[];
export function downsample<T>(
  items: readonly T[],
  maxPoints: number,
  size: (item: T) => number = (item) => (item as MemorySample).rssBytes,
): T[] {
  if (items.length <= maxPoints) return [...items];
  const out: T[] = [];
  const bucket = items.length / maxPoints;
  for (let b = 0; b < maxPoints; b++) {
    const from = Math.floor(b * bucket);
    const to = Math.min(items.length, Math.floor((b + 1) * bucket));
    let best = items[from]!;
    for (let i = from + 1; i < to; i++) if (size(items[i]!) > size(best)) best = items[i]!;
    out.push(best);
  }
  return out;
}
