// The priority-aware scheduler of weight retrievals (the paper's Algorithm 1 plus its stall rule), and the
// FIFO policy it is ablated against. The WeightRetriever asks the scheduler before every chunk it reads;
// the policy decides whether that chunk may go now or must wait, so suspension takes effect between chunks.
import { CicadaError } from "../../errors.js";
import { now as traceNow } from "../../metrics/trace.js";
import { BandwidthEstimator } from "./bandwidth-estimator.js";

/** Why a retrieval was raised: it ran past its expected duration, or the pipeline is stalled waiting for it. */
export type RaiseReason = "overdue" | "stalled";

/** One scheduling decision, kept in order so that tests and the benchmark can replay what happened. */
export interface SchedulerDecision {
  /** Time of the decision (milliseconds on the scheduler's clock). */
  t: number;
  /** `raise`: the stage became high priority; `suspend`: the stage's next chunk waits; `resume`: it goes on. */
  kind: "raise" | "suspend" | "resume";
  stage: number;
  /** The reason of the raise that caused this decision. */
  reason: RaiseReason;
}

/** How often each decision was taken, and how often the pipeline reported a stall. */
export interface SchedulerCounters {
  raises: number;
  overdueRaises: number;
  stalledRaises: number;
  suspensions: number;
  resumes: number;
  stalls: number;
}

/**
 * The contract between the WeightRetriever and a retrieval policy. The retriever calls, for each stage:
 * `started` once (its retrieval begins), then `beforeChunk` (awaited) and `progressed` around every chunk,
 * then `finished` once (done or failed). The pipeline calls `stalled` when it waits to apply a stage whose
 * bytes are not there yet. `abort` rejects every pending `beforeChunk`.
 */
export interface RetrievalScheduler {
  /** Resolves when the stage's next chunk may be read; rejects after {@link abort}. */
  beforeChunk(stage: number): Promise<void>;
  /** The stage's retrieval of `bytes` bytes begins now. */
  started(stage: number, bytes: number): void;
  /** A chunk of `bytes` bytes of the stage took `ms` milliseconds to read. */
  progressed(stage: number, bytes: number, ms: number): void;
  /** The stage's retrieval is over (completed or failed). */
  finished(stage: number): void;
  /** The pipeline is waiting for this stage's bytes (A_stage is otherwise ready). */
  stalled(stage: number): void;
  /** Rejects every pending and future {@link beforeChunk} with `reason`. */
  abort(reason: unknown): void;
  /** Online estimate of one retrieval's read throughput, bytes per second. */
  readonly bandwidth: number;
  /** Decisions taken so far, oldest first. */
  readonly log: readonly SchedulerDecision[];
  readonly counters: Readonly<SchedulerCounters>;
}

/** Options shared by the schedulers. */
export interface SchedulerOptions {
  /** Bandwidth assumed before any chunk was observed, bytes per second (default 1e9). */
  initialBandwidth?: number;
  /** Weight of the newest chunk in the moving average, in (0, 1] (default 0.3). */
  smoothing?: number;
  /** Clock in milliseconds (default: the trace clock); tests inject a fake one. */
  now?: () => number;
  /**
   * Priority scheduler: a retrieval is overdue after `slack` times its expected duration (default 1, the
   * paper's rule; with an unbiased estimate about half of the retrievals end past 1x on a noisy machine).
   */
  slack?: number;
}

function newCounters(): SchedulerCounters {
  return { raises: 0, overdueRaises: 0, stalledRaises: 0, suspensions: 0, resumes: 0, stalls: 0 };
}

/** No priorities: every chunk goes as soon as asked (the ablation without the scheduler). */
export class FifoScheduler implements RetrievalScheduler {
  readonly log: readonly SchedulerDecision[] = [];
  private readonly estimator: BandwidthEstimator;
  private readonly stats = newCounters();
  private abortReason: { reason: unknown } | undefined;

  constructor(options: SchedulerOptions = {}) {
    this.estimator = new BandwidthEstimator(options.initialBandwidth, options.smoothing);
  }

  beforeChunk(_stage: number): Promise<void> {
    return this.abortReason ? Promise.reject(toError(this.abortReason.reason)) : Promise.resolve();
  }

  started(_stage: number, _bytes: number): void {}

  progressed(_stage: number, bytes: number, ms: number): void {
    this.estimator.observe(bytes, ms);
  }

  finished(_stage: number): void {}

  stalled(_stage: number): void {
    this.stats.stalls++;
  }

  abort(reason: unknown): void {
    this.abortReason ??= { reason };
  }

  get bandwidth(): number {
    return this.estimator.bytesPerSecond;
  }

  get counters(): Readonly<SchedulerCounters> {
    return { ...this.stats };
  }
}

/** What the priority scheduler knows of one started retrieval. */
interface ActiveRetrieval {
  t0: number;
  bytes: number;
  /** Time spent suspended by this scheduler (not the retrieval's fault), and since when if suspended now. */
  suspendedMs: number;
  suspendedSince: number | undefined;
}

/**
 * The paper's Algorithm 1 with the stall rule. Before each chunk of any retrieval R_j, it looks for a
 * started, unfinished R_i that is overdue (now >= t0_i + bytes_i / bandwidth) or stalled (the pipeline
 * waits to apply stage i); the lowest such stage is raised, and every other retrieval is suspended at its
 * next chunk until the raised one finishes. A raise lasts until its retrieval finishes, with one exception:
 * a stalled stage preempts a raise made because a later stage was overdue, since the pipeline cannot go on
 * without the stalled one. Time a retrieval spends suspended by this scheduler extends its deadline: a
 * retrieval the scheduler held back is not slow, and raising it for that would cascade.
 */
export class PriorityScheduler implements RetrievalScheduler {
  private readonly decisions: SchedulerDecision[] = [];
  private readonly estimator: BandwidthEstimator;
  private readonly clock: () => number;
  private readonly slack: number;
  private readonly stats = newCounters();
  private readonly active = new Map<number, ActiveRetrieval>();
  /** Stages the pipeline waits for (recorded even before their retrieval starts). */
  private readonly stalls = new Set<number>();
  /** Suspended stages, with the reason of the raise that suspended them. */
  private readonly suspended = new Map<number, RaiseReason>();
  private raised: { stage: number; reason: RaiseReason } | undefined;
  private waiters = new Set<{ resolve: () => void; reject: (e: Error) => void }>();
  private abortReason: { reason: unknown } | undefined;

  constructor(options: SchedulerOptions = {}) {
    this.estimator = new BandwidthEstimator(options.initialBandwidth, options.smoothing);
    this.clock = options.now ?? traceNow;
    this.slack = options.slack ?? 1;
    if (!(this.slack > 0))
      throw new CicadaError("E_USAGE", `priority scheduler: slack ${this.slack} must be > 0`);
  }

  get log(): readonly SchedulerDecision[] {
    return this.decisions;
  }

  get counters(): Readonly<SchedulerCounters> {
    return { ...this.stats };
  }

  get bandwidth(): number {
    return this.estimator.bytesPerSecond;
  }

  /** The stage currently raised, if any. */
  get raisedStage(): number | undefined {
    return this.raised?.stage;
  }

  /** When the stage's retrieval is expected to end (ms on the scheduler's clock), if it has started. */
  deadline(stage: number): number | undefined {
    const r = this.active.get(stage);
    return r ? this.deadlineOf(r, this.clock()) : undefined;
  }

  started(stage: number, bytes: number): void {
    this.active.set(stage, { t0: this.clock(), bytes, suspendedMs: 0, suspendedSince: undefined });
  }

  progressed(_stage: number, bytes: number, ms: number): void {
    this.estimator.observe(bytes, ms);
  }

  finished(stage: number): void {
    this.active.delete(stage);
    this.stalls.delete(stage);
    this.suspended.delete(stage);
    if (this.raised?.stage === stage) {
      this.raised = undefined;
      this.wakeAll();
    }
  }

  stalled(stage: number): void {
    this.stats.stalls++;
    this.stalls.add(stage);
    if (this.evaluate()) this.wakeAll();
  }

  async beforeChunk(stage: number): Promise<void> {
    for (;;) {
      if (this.abortReason) throw toError(this.abortReason.reason);
      if (this.evaluate()) this.wakeAll();
      const raised = this.raised;
      if (raised === undefined || raised.stage === stage) {
        const reason = this.suspended.get(stage);
        if (reason !== undefined) {
          this.suspended.delete(stage);
          const r = this.active.get(stage);
          if (r?.suspendedSince !== undefined) {
            r.suspendedMs += this.clock() - r.suspendedSince;
            r.suspendedSince = undefined;
          }
          this.record("resume", stage, reason);
        }
        return;
      }
      if (!this.suspended.has(stage)) {
        this.suspended.set(stage, raised.reason);
        const r = this.active.get(stage);
        if (r) r.suspendedSince = this.clock();
        this.record("suspend", stage, raised.reason);
      }
      await new Promise<void>((resolve, reject) => this.waiters.add({ resolve, reject }));
    }
  }

  abort(reason: unknown): void {
    this.abortReason ??= { reason };
    const waiters = this.waiters;
    this.waiters = new Set();
    for (const w of waiters) w.reject(toError(reason));
  }

  /** The lowest started, unfinished stage that is stalled or overdue. */
  private candidate(): { stage: number; reason: RaiseReason } | undefined {
    const t = this.clock();
    let best: { stage: number; reason: RaiseReason } | undefined;
    for (const [stage, r] of this.active) {
      if (best !== undefined && stage > best.stage) continue;
      if (this.stalls.has(stage)) best = { stage, reason: "stalled" };
      else if (t >= this.deadlineOf(r, t)) best = { stage, reason: "overdue" };
    }
    return best;
  }

  /** t0 + slack x expected duration + time suspended (so far, at time `t`). */
  private deadlineOf(r: ActiveRetrieval, t: number): number {
    const suspended = r.suspendedMs + (r.suspendedSince === undefined ? 0 : t - r.suspendedSince);
    return r.t0 + this.slack * this.estimator.expectedMs(r.bytes) + suspended;
  }

  /** Applies Algorithm 1's raise rule; true if the raised stage changed (waiters must re-check). */
  private evaluate(): boolean {
    const c = this.candidate();
    if (c === undefined) return false;
    const current = this.raised;
    if (current !== undefined) {
      const preempts = c.reason === "stalled" && current.reason === "overdue" && c.stage < current.stage;
      if (!preempts) return false;
    }
    this.raised = c;
    this.stats.raises++;
    if (c.reason === "overdue") this.stats.overdueRaises++;
    else this.stats.stalledRaises++;
    this.record("raise", c.stage, c.reason);
    return true;
  }

  private record(kind: SchedulerDecision["kind"], stage: number, reason: RaiseReason): void {
    if (kind === "suspend") this.stats.suspensions++;
    if (kind === "resume") this.stats.resumes++;
    this.decisions.push({ t: this.clock(), kind, stage, reason });
  }

  private wakeAll(): void {
    const waiters = this.waiters;
    this.waiters = new Set();
    for (const w of waiters) w.resolve();
  }
}

/** The scheduler a strategy asks for by name. */
export function createScheduler(
  kind: "priority" | "fifo",
  options: SchedulerOptions = {},
): RetrievalScheduler {
  return kind === "priority" ? new PriorityScheduler(options) : new FifoScheduler(options);
}

function toError(reason: unknown): Error {
  return reason instanceof Error ? reason : new Error(`retrieval aborted: ${String(reason)}`);
}
