// The bounded queue of one model: requests are admitted (or refused with E_QUEUE_FULL) once their body has
// arrived and been decoded, so that a client still sending (or sending slowly) never holds a place that a
// complete request could use; admitted requests then run one at a time in admission order. A request whose deadline passes while it waits is dropped from
// the queue; one whose deadline passes while it runs is answered at once, but its work keeps the queue
// until it ends, so that a late run never overlaps the next one on the same model.
import { CicadaError } from "../../errors.js";

/** A place in the queue, held from admission until the request's work has ended (or it was dropped). */
export interface Ticket {
  /** Gives the place back (idempotent): for a request that will not run after all. */
  release(): void;
}

/** Options of {@link RequestQueue.run}. */
export interface RunOptions {
  /** Aborting it answers the caller with its reason (a timeout): dropped if waiting, abandoned if running. */
  signal?: AbortSignal;
  /** Runs after the result went to the caller and before the next job starts (e.g. dispose a model). */
  after?: () => Promise<void>;
}

/** The reason of an aborted signal, as a CicadaError. */
export function abortError(signal: AbortSignal): CicadaError {
  const reason: unknown = signal.reason;
  return reason instanceof CicadaError
    ? reason
    : new CicadaError("E_TIMEOUT", `the request was abandoned (${String(reason)})`);
}

/** One model's bounded FIFO of requests, executing one job at a time. */
export class RequestQueue {
  private admittedCount = 0;
  private running = false;
  private readonly waiting: (() => Promise<void>)[] = [];

  /**
   * @param limit requests admitted at once (running or waiting)
   * @param label names the queue in errors (the model name)
   */
  constructor(
    readonly limit: number,
    private readonly label: string,
  ) {}

  /** Requests holding a ticket. */
  get admitted(): number {
    return this.admittedCount;
  }

  /** True while a job runs or waits. */
  get busy(): boolean {
    return this.running || this.waiting.length > 0;
  }

  /** Admits a request now, or throws E_QUEUE_FULL. */
  admit(): Ticket {
    if (this.admittedCount >= this.limit) {
      throw new CicadaError(
        "E_QUEUE_FULL",
        `model ${this.label}: ${this.admittedCount} requests are queued already (limit ${this.limit}: --max-queue ${this.limit - 1} plus the one running)`,
      );
    }
    this.admittedCount++;
    let held = true;
    return {
      release: () => {
        if (held) {
          held = false;
          this.admittedCount--;
        }
      },
    };
  }

  /**
   * Runs `job` in its turn. The ticket is released when the job (and `after`) ended, or at once if the
   * signal aborts while the job waits; if it aborts while the job runs, the caller is answered at once and
   * the job keeps its turn until it ends.
   */
  run<T>(ticket: Ticket, job: () => Promise<T>, options: RunOptions = {}): Promise<T> {
    const { signal, after } = options;
    return new Promise<T>((resolve, reject) => {
      let started = false;
      const task = async () => {
        started = true;
        try {
          if (signal?.aborted) throw abortError(signal);
          resolve(await job());
        } catch (e) {
          reject(e instanceof Error ? e : new Error(String(e)));
        } finally {
          signal?.removeEventListener("abort", onAbort);
          try {
            await after?.();
          } finally {
            ticket.release();
          }
        }
      };
      const onAbort = () => {
        if (!started) {
          this.waiting.splice(this.waiting.indexOf(task), 1);
          ticket.release();
        }
        reject(abortError(signal!));
      };
      if (signal?.aborted) {
        ticket.release();
        reject(abortError(signal));
        return;
      }
      signal?.addEventListener("abort", onAbort, { once: true });
      this.waiting.push(task);
      this.pump();
    });
  }

  /** Runs `job` in its turn without a ticket (loads, unloads, shutdown): not counted against the limit. */
  exclusive<T>(job: () => Promise<T>): Promise<T> {
    return this.run({ release: () => {} }, job);
  }

  private pump(): void {
    if (this.running) return;
    const next = this.waiting.shift();
    if (!next) return;
    this.running = true;
    void next()
      .catch(() => {})
      .finally(() => {
        this.running = false;
        this.pump();
      });
  }
}
