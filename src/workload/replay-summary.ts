// A replay run summarised as the paper reports it: latency percentiles (end to end, waiting for an instance,
// served, at the instance), rejections and failures, cold-start count and share, and host memory over the
// run. Computed from the request records and the memory timeline alone, so that a report can compute it
// again from the raw data a replay wrote (report/replay-data.ts) without loading the platform.
import { quantile, summarize } from "../metrics/stats.js";
import type { MemoryPoint } from "../serve/platform/instance-pool.js";
import type { RequestRecord } from "./replay.js";

/** A replay run summarised. */
export interface ReplaySummary {
  sent: number;
  ok: number;
  /** 429: the gateway's queue was full. */
  rejected: number;
  /** 504: past the deadline. */
  timedOut: number;
  /** Any other failure (5xx, no answer). */
  failed: number;
  latencyMs: { p50: number; p95: number; p99: number; max: number; mean: number };
  queueMs: { p50: number; p99: number };
  /** Latency less the wait for an instance: what a request took once it had one. */
  serviceMs: { p50: number; p99: number };
  /** The instance's own time (request received → response ready at the instance). */
  instanceMs: { p50: number; p99: number };
  coldStarts: number;
  /** Cold starts over successful requests. */
  coldShare: number;
  /** Median load time of the cold requests. */
  coldLoadMsMedian: number;
  /** Largest delay between an arrival's time and its send (open-loop fidelity). */
  maxSendLagMs: number;
  memory: {
    hostPeakBytes: number;
    hostMeanBytes: number;
    pssSumPeakBytes: number;
    rssSumPeakBytes: number;
    rssSumMeanBytes: number;
    anonSumPeakBytes: number;
    anonSumMeanBytes: number;
  };
}

const mean = (v: number[]) => (v.length ? v.reduce((a, b) => a + b, 0) / v.length : NaN);
const peak = (v: number[]) => (v.length ? Math.max(...v) : NaN);

/** Summarises the records and the memory points sampled during the replay. */
export function summarizeReplay(
  records: readonly RequestRecord[],
  memory: readonly MemoryPoint[],
): ReplaySummary {
  const ok = records.filter((r) => r.status === 200);
  const latencies = ok.map((r) => r.latencyMs);
  const cold = ok.filter((r) => r.cold);
  const col = (k: keyof MemoryPoint) => memory.map((m) => m[k]);
  const queue = ok.map((r) => r.queueMs ?? 0);
  const service = ok.map((r) => r.latencyMs - (r.queueMs ?? 0));
  const instance = ok.flatMap((r) => (r.instanceMs === null ? [] : [r.instanceMs]));
  return {
    sent: records.length,
    ok: ok.length,
    rejected: records.filter((r) => r.status === 429).length,
    timedOut: records.filter((r) => r.status === 504).length,
    failed: records.filter((r) => r.status !== 200 && r.status !== 429 && r.status !== 504).length,
    latencyMs: {
      p50: quantile(latencies, 0.5),
      p95: quantile(latencies, 0.95),
      p99: quantile(latencies, 0.99),
      max: peak(latencies),
      mean: mean(latencies),
    },
    queueMs: { p50: quantile(queue, 0.5), p99: quantile(queue, 0.99) },
    serviceMs: { p50: quantile(service, 0.5), p99: quantile(service, 0.99) },
    instanceMs: { p50: quantile(instance, 0.5), p99: quantile(instance, 0.99) },
    coldStarts: cold.length,
    coldShare: ok.length ? cold.length / ok.length : NaN,
    coldLoadMsMedian: summarize(cold.flatMap((r) => (r.loadMs === null ? [] : [r.loadMs]))).median,
    maxSendLagMs: peak(records.map((r) => r.sentMs - r.scheduledMs)),
    memory: {
      hostPeakBytes: peak(col("hostBytes")),
      hostMeanBytes: mean(col("hostBytes")),
      pssSumPeakBytes: peak(col("pssSumBytes")),
      rssSumPeakBytes: peak(col("rssSumBytes")),
      rssSumMeanBytes: mean(col("rssSumBytes")),
      anonSumPeakBytes: peak(col("anonSumBytes")),
      anonSumMeanBytes: mean(col("anonSumBytes")),
    },
  };
}
