// The WeightDecoupler's retrieval engine (unit R of the pipeline): reads of every stage's weight bytes are
// issued when loading starts, in stage order, and run in the background while stages are constructed.
// The pipeline awaits `whenRetrieved(i)` before applying stage i. Two modes: `buffer` reads each stage
// into its own buffer under a memory budget; `prefetch` streams each stage through reused scratch memory
// only to make it resident in the page cache (onnxruntime then maps the file), verifying its checksum.
// Which retrieval reads its next chunk is decided by a RetrievalScheduler, consulted before every chunk.
// This file holds the stages' lifecycle, the budget and the read loop; its parts are beside it: file
// reads (file-reads.ts), checksums (ordered-checksum.ts), memory (buffers.ts), types and errors.
import { DEFAULTS } from "../../config.js";
import { isCicadaError } from "../../errors.js";
import { now as traceNow, type TraceEvent } from "../../metrics/trace.js";
import { allocatePageAligned, ScratchSets } from "./buffers.js";
import { openForReading, readFully, type FileHandle } from "./file-reads.js";
import { CHECKSUM_FORMAT, OrderedChecksum, verifyChecksum } from "./ordered-checksum.js";
import { fileError, usageError } from "./retrieval-errors.js";
import { PriorityScheduler, type RetrievalScheduler } from "./retrieval-scheduler.js";
import type { RetrievalRange, RetrievalStatus, RetrieverOptions, RetrieverStats } from "./retrieval-types.js";

export type {
  ChunkRead,
  RetrievalRange,
  RetrievalStatus,
  RetrieverOptions,
  RetrieverStats,
} from "./retrieval-types.js";

interface Waiter {
  resolve: (bytes: Uint8Array | undefined) => void;
  reject: (e: Error) => void;
}

interface StageState {
  range: RetrievalRange;
  status: RetrievalStatus;
  bytes: Uint8Array | undefined;
  error: Error | undefined;
  waiters: Waiter[];
}

/** Issues and runs the retrievals of all stages; see the file header. */
export class WeightRetriever {
  private readonly mode: "buffer" | "prefetch";
  private readonly chunkBytes: number;
  private readonly maxInFlight: number;
  private readonly lanes: number;
  private readonly budget: number;
  private readonly scheduler: RetrievalScheduler;
  private readonly onEvent: ((event: TraceEvent) => void) | undefined;
  private readonly clock: () => number;
  private readonly readHook: RetrieverOptions["readChunk"];
  /** Stages in issue order (ascending stage index). */
  private readonly order: StageState[];
  private readonly byStage = new Map<number, StageState>();
  private readonly handles = new Set<FileHandle>();
  private readonly scratch: ScratchSets | undefined;
  private next = 0;
  private inFlight = 0;
  private begun = false;
  private abortError: Error | undefined;
  private closing: Promise<void> | undefined;
  private readonly totals: RetrieverStats = { bytesRead: 0, chunks: 0, aliveBytes: 0, peakAliveBytes: 0 };

  constructor(ranges: readonly RetrievalRange[], options: RetrieverOptions) {
    this.mode = options.mode;
    this.chunkBytes = options.chunkBytes ?? DEFAULTS.chunkBytes;
    this.maxInFlight = options.maxInFlight ?? DEFAULTS.maxInFlight;
    this.lanes = options.lanes ?? 4;
    this.budget = options.memoryBudgetBytes ?? Infinity;
    this.clock = options.now ?? traceNow;
    this.scheduler = options.scheduler ?? new PriorityScheduler({ now: this.clock });
    this.onEvent = options.onEvent;
    this.readHook = options.readChunk;
    if (!Number.isSafeInteger(this.chunkBytes) || this.chunkBytes < 1)
      throw usageError(`chunkBytes is ${this.chunkBytes}; expected a positive integer`);
    if (!Number.isSafeInteger(this.maxInFlight) || this.maxInFlight < 1)
      throw usageError(`maxInFlight is ${this.maxInFlight}; expected a positive integer`);
    if (!Number.isSafeInteger(this.lanes) || this.lanes < 1)
      throw usageError(`lanes is ${this.lanes}; expected a positive integer`);
    if (!(this.budget > 0)) throw usageError(`memoryBudgetBytes is ${this.budget}; expected > 0`);
    for (const range of ranges) {
      const { stage, offset, length, checksum } = range;
      if (!Number.isSafeInteger(stage) || stage < 0)
        throw usageError(`stage index ${stage} is not an integer >= 0`);
      if (this.byStage.has(stage)) throw usageError(`stage ${stage} is given twice`);
      if (!Number.isSafeInteger(offset) || offset < 0 || !Number.isSafeInteger(length) || length < 0)
        throw usageError(`stage ${stage}: range ${offset}+${length} is not two integers >= 0`);
      if (checksum !== undefined && !CHECKSUM_FORMAT.test(checksum))
        throw usageError(`stage ${stage}: checksum '${checksum}' is not 'crc32:' and 8 hex digits`);
      this.byStage.set(stage, { range, status: "queued", bytes: undefined, error: undefined, waiters: [] });
    }
    this.order = [...this.byStage.values()].sort((a, b) => a.range.stage - b.range.stage);
    if (this.mode === "prefetch") {
      const longest = Math.max(0, ...this.order.map((s) => s.range.length));
      this.scratch = new ScratchSets(this.chunkBytes, longest, this.lanes, this.maxInFlight);
    }
  }

  /** Issues every retrieval, in stage order; they run in the background. */
  start(): void {
    if (this.begun) throw usageError("start() was called twice");
    this.begun = true;
    this.pump();
  }

  /**
   * Resolves when the stage's bytes are retrieved: with them in buffer mode, undefined in prefetch mode.
   * Rejects with the stage's error (E_BUNDLE_FILE, E_BUNDLE_CHECKSUM), after release, or after abort.
   */
  whenRetrieved(stage: number): Promise<Uint8Array | undefined> {
    const s = this.byStage.get(stage);
    if (!s) return Promise.reject(usageError(`no retrieval of stage ${stage}`));
    switch (s.status) {
      case "retrieved":
        return Promise.resolve(s.bytes);
      case "released":
        return Promise.reject(usageError(`stage ${stage}'s retrieved bytes were released already`));
      case "failed":
      case "aborted":
        return Promise.reject(s.error!);
      default:
        return new Promise((resolve, reject) => s.waiters.push({ resolve, reject }));
    }
  }

  /** Drops the retriever's reference to a retrieved stage's buffer, which frees its share of the budget. */
  release(stage: number): void {
    const s = this.byStage.get(stage);
    if (!s) throw usageError(`no retrieval of stage ${stage}`);
    if (s.status === "queued" || s.status === "reading")
      throw usageError(`stage ${stage} cannot be released: its retrieval is ${s.status}`);
    if (s.status !== "retrieved") return;
    s.status = "released";
    s.bytes = undefined;
    this.free(s);
    this.pump();
  }

  /**
   * The pipeline is stalled waiting for this stage's bytes: the scheduler's stall rule raises it. A stage
   * whose retrieval is over already (retrieved, failed) needs no help and is ignored.
   */
  waiting(stage: number): void {
    const s = this.byStage.get(stage);
    if (!s) throw usageError(`no retrieval of stage ${stage}`);
    if (s.status === "queued" || s.status === "reading") this.scheduler.stalled(stage);
  }

  /** Cancels everything: pending waits reject with `reason`, buffers are dropped, file handles closed. */
  abort(reason: unknown): Promise<void> {
    if (this.closing) return this.closing;
    const error = reason instanceof Error ? reason : new Error(`retrieval aborted: ${String(reason)}`);
    this.abortError = error;
    this.scheduler.abort(error);
    for (const s of this.order) {
      if (s.status === "failed" || s.status === "released") continue;
      s.status = "aborted";
      s.error = error;
      s.bytes = undefined;
      this.settle(s, (w) => w.reject(error));
    }
    this.totals.aliveBytes = 0;
    this.closing = Promise.all([...this.handles].map((h) => this.closeHandle(h))).then(() => undefined);
    return this.closing;
  }

  /** Where a stage's retrieval is in its lifecycle. */
  status(stage: number): RetrievalStatus {
    const s = this.byStage.get(stage);
    if (!s) throw usageError(`no retrieval of stage ${stage}`);
    return s.status;
  }

  /**
   * Online estimate of one retrieval's throughput at the current concurrency, bytes per second (the
   * scheduler's, from chunk timings that include checksums and exclude time the scheduler held a stage).
   */
  get bandwidth(): number {
    return this.scheduler.bandwidth;
  }

  /** A snapshot of the totals. */
  get stats(): Readonly<RetrieverStats> {
    return { ...this.totals };
  }

  /** Starts queued retrievals while a slot is free and (buffer mode) the budget allows, in stage order. */
  private pump(): void {
    while (
      !this.abortError &&
      this.begun &&
      this.next < this.order.length &&
      this.inFlight < this.maxInFlight
    ) {
      const s = this.order[this.next]!;
      const length = this.mode === "buffer" ? s.range.length : 0;
      // A stage larger than the whole budget still runs, alone.
      if (this.totals.aliveBytes > 0 && this.totals.aliveBytes + length > this.budget) return;
      this.next++;
      this.inFlight++;
      this.totals.aliveBytes += length;
      this.totals.peakAliveBytes = Math.max(this.totals.peakAliveBytes, this.totals.aliveBytes);
      void this.retrieve(s);
    }
  }

  /**
   * Reads one stage chunk by chunk, `lanes` chunks at a time (a disk that needs several requests in
   * flight to reach its bandwidth gets them even while the scheduler lets only one stage read). Checksums
   * are folded in chunk order as chunks complete. Never rejects: a failure settles the stage's waiters.
   */
  private async retrieve(s: StageState): Promise<void> {
    const { stage, length } = s.range;
    s.status = "reading";
    this.scheduler.started(stage, length);
    const slots = this.scratch?.take();
    const target = this.mode === "buffer" ? allocatePageAligned(length) : undefined;
    const verifying = s.range.checksum !== undefined;
    const chunks = Math.ceil(length / this.chunkBytes);
    let handle: FileHandle | undefined;
    const dispatched = this.clock();
    let start: number | undefined;
    let end = dispatched;
    try {
      if (length > 0) handle = await this.openHandle(s.range);
      const crc = new OrderedChecksum(verifying);
      let claimed = 0;
      // A chunk's time runs from the stage's previous completion (the dispatch for the first), so that
      // the scheduler sees the stage's own throughput at its concurrency, opening and checksums included,
      // less the time the scheduler held it back.
      let last = dispatched;
      // The failure of the earliest chunk is the stage's error (it names where the range goes wrong).
      const failed: { first?: { index: number; error: unknown } } = {};
      const lane = async (slot: Uint8Array | undefined): Promise<void> => {
        while (claimed < chunks && !failed.first) {
          const asked = this.clock();
          await this.scheduler.beforeChunk(stage);
          if (this.abortError || failed.first || claimed >= chunks) return;
          const held = this.clock() - asked;
          const index = claimed++;
          const offset = index * this.chunkBytes;
          const n = Math.min(this.chunkBytes, length - offset);
          const view = target ? target.subarray(offset, offset + n) : slot!.subarray(0, n);
          start ??= this.clock();
          try {
            await readFully(handle!, s.range, view, offset, index, this.readHook);
          } catch (error) {
            // NOTE: re-read: another lane may have failed while this one was reading.
            const first = failed.first as { index: number } | undefined;
            if (!first || index < first.index) failed.first = { index, error };
            crc.cancel();
            return;
          }
          end = this.clock();
          this.scheduler.progressed(stage, n, Math.max(0, end - last - held));
          last = end;
          this.totals.bytesRead += n;
          this.totals.chunks++;
          // The scratch slot is reused only after its chunk has been folded into the checksum.
          await crc.fold(index, view);
        }
      };
      const lanes = slots ?? new Array<undefined>(Math.min(this.lanes, Math.max(1, chunks))).fill(undefined);
      await Promise.all(lanes.map((slot) => lane(slot)));
      if (failed.first) throw failed.first.error;
      if (this.abortError) return;
      if (verifying) end = this.clock();
      verifyChecksum(s.range, crc.value);
      s.status = "retrieved";
      s.bytes = target;
      this.onEvent?.({ unit: "R", stage, worker: "main", start: start ?? dispatched, end, bytes: length });
      this.settle(s, (w) => w.resolve(target));
    } catch (e) {
      if (this.abortError) return;
      s.status = "failed";
      s.error = isCicadaError(e) ? e : fileError(s.range, `cannot be read (${(e as Error).message})`, e);
      this.free(s);
      this.settle(s, (w) => w.reject(s.error!));
    } finally {
      this.scheduler.finished(stage);
      if (handle) await this.closeHandle(handle);
      if (slots) this.scratch!.give(slots);
      this.inFlight--;
      this.pump();
    }
  }

  private async openHandle(range: RetrievalRange): Promise<FileHandle> {
    let handle: FileHandle;
    try {
      handle = openForReading(range.path);
    } catch (e) {
      throw fileError(range, `cannot be opened (${(e as Error).message})`, e);
    }
    if (this.abortError) {
      await handle.close();
      throw this.abortError;
    }
    this.handles.add(handle);
    return handle;
  }

  /** Closes a handle once, whoever asks first (the retrieval or abort). */
  private async closeHandle(handle: FileHandle): Promise<void> {
    if (!this.handles.delete(handle)) return;
    await handle.close().catch(() => undefined);
  }

  /** Returns a stage's share of the memory budget. */
  private free(s: StageState): void {
    if (this.mode === "buffer") this.totals.aliveBytes -= s.range.length;
  }

  private settle(s: StageState, fn: (w: Waiter) => void): void {
    const waiters = s.waiters;
    s.waiters = [];
    for (const w of waiters) fn(w);
  }
}
