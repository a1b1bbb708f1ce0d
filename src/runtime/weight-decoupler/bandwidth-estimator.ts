// How fast one retrieval reads: the schedulers' estimate of per-chunk read throughput, from which the
// priority scheduler derives each retrieval's expected duration (Algorithm 1's deadline).
import { CicadaError } from "../../errors.js";

/**
 * An exponentially weighted moving average of per-chunk read throughput. Chunks of concurrent retrievals
 * are measured separately, so the estimate is the throughput of one retrieval at the current concurrency,
 * which is what an expected duration needs.
 */
export class BandwidthEstimator {
  private bytesPerMs: number;
  private readonly smoothing: number;

  constructor(initialBytesPerSecond = 1e9, smoothing = 0.3) {
    if (!(initialBytesPerSecond > 0) || !(smoothing > 0 && smoothing <= 1)) {
      throw new CicadaError(
        "E_USAGE",
        `bandwidth estimator: initial bandwidth ${initialBytesPerSecond} must be > 0 and smoothing ${smoothing} in (0, 1]`,
      );
    }
    this.bytesPerMs = initialBytesPerSecond / 1000;
    this.smoothing = smoothing;
  }

  /** Folds in one chunk; chunks timed at 0 ms (a coarse clock) carry no information and are skipped. */
  observe(bytes: number, ms: number): void {
    if (!(ms > 0) || !(bytes > 0)) return;
    this.bytesPerMs += this.smoothing * (bytes / ms - this.bytesPerMs);
  }

  /** Bytes per second. */
  get bytesPerSecond(): number {
    return this.bytesPerMs * 1000;
  }

  /** Expected milliseconds to read `bytes`. */
  expectedMs(bytes: number): number {
    return bytes / this.bytesPerMs;
  }
}
