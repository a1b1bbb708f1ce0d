// The per-request deadline: counted from the request's arrival, --timeout-ms at most, shortened (never
// lengthened) by a client's own `cicada_timeout_ms`. When it passes, its signal aborts with E_TIMEOUT:
// the body read stops, a queued request leaves its queue, and the caller is answered 504 while work that
// already started runs to its end.
import { CicadaError } from "../../errors.js";
import { now } from "../../metrics/trace.js";

/** One request's deadline. */
export class Deadline {
  private readonly controller = new AbortController();
  private timer: NodeJS.Timeout | undefined;
  private limitMs = Infinity;

  /**
   * @param startedAt the request's arrival on the clock of src/metrics/trace.ts
   * @param limitMs the server's limit
   * @param what names the request in the error
   */
  constructor(
    private readonly startedAt: number,
    limitMs: number,
    private readonly what: string,
  ) {
    this.shorten(limitMs, "--timeout-ms");
  }

  /** Aborts with E_TIMEOUT when the deadline passes. */
  get signal(): AbortSignal {
    return this.controller.signal;
  }

  /** Moves the deadline to `limitMs` after arrival if that is sooner; `source` names the limit. */
  shorten(limitMs: number, source: string): void {
    if (limitMs >= this.limitMs || this.signal.aborted) return;
    this.limitMs = limitMs;
    clearTimeout(this.timer);
    const error = new CicadaError("E_TIMEOUT", `${this.what}: no answer within ${limitMs} ms (${source})`);
    this.timer = setTimeout(
      () => this.controller.abort(error),
      Math.max(0, limitMs - (now() - this.startedAt)),
    );
  }

  /** `work`'s result, or the timeout's error if the deadline passes first. */
  race<T>(work: Promise<T>): Promise<T> {
    return new Promise<T>((resolve, reject) => {
      const onAbort = () => reject(this.signal.reason as Error);
      if (this.signal.aborted) onAbort();
      this.signal.addEventListener("abort", onAbort, { once: true });
      work.then(resolve, reject).finally(() => this.signal.removeEventListener("abort", onAbort));
    });
  }

  /** Stops the timer (the request has been answered). */
  clear(): void {
    clearTimeout(this.timer);
  }
}
