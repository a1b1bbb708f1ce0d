// The open-loop replayer: every arrival of a trace is sent to the gateway at its (time-scaled) arrival
// time, whether or not earlier requests have been answered — so queueing at the platform shows up as
// latency, and a full queue as rejections (429), as it would for real clients. Bounded: it stops sending at
// --max-wall-s and abandons what is still outstanding a drain period later; loopback only. Each answer is
// recorded with the platform's facts (instance, cold, queue and load time), and a run is summarised as the
// paper reports it: latency percentiles, cold-start count and share, memory over time.
import { setMaxListeners } from "node:events";
import { Agent, type IncomingHttpHeaders } from "node:http";
import { quantile, summarize } from "../metrics/stats.js";
import { now } from "../metrics/trace.js";
import { exchange } from "./http-exchange.js";
import type { MemoryPoint } from "./instance-pool.js";
import type { InferRequestBytes } from "./replay-inputs.js";
import type { Arrival } from "./trace-invocations.js";

/** One request of a replay. Times in ms; `scheduledMs` and `sentMs` from the replay's start. */
export interface RequestRecord {
  func: string;
  model: string;
  scheduledMs: number;
  sentMs: number;
  /** Sent → response body read (what the client waited). */
  latencyMs: number;
  /** HTTP status; 0 when no answer came (connection failure, abandoned at the end). */
  status: number;
  error?: string;
  cold: boolean | null;
  instance: string | null;
  /** Time waiting for an instance at the gateway. */
  queueMs: number | null;
  /** The gateway's own time: request received → response ready (x-cicada-gateway-ms). */
  gatewayMs: number | null;
  /** The instance's time: request received → response ready (cicada_latency_ms). */
  instanceMs: number | null;
  /** The instance's load time for a cold request (cicada_load_ms). */
  loadMs: number | null;
}

/** Options of {@link replayArrivals}. */
export interface ReplayOptions {
  /** The gateway, e.g. http://127.0.0.1:PORT. */
  url: string;
  arrivals: readonly Arrival[];
  /** The request sent for each model. */
  requests: ReadonlyMap<string, InferRequestBytes>;
  /** No request is sent after this many ms. */
  maxWallMs: number;
  /** Outstanding requests are abandoned this long after the last send (default 60 s). */
  drainMs?: number;
  onRecord?: (record: RequestRecord, done: number) => void;
}

/** The facts in an infer response's parameters (JSON body, or the JSON header of a binary one). */
function parametersOf(body: Uint8Array, headerLength: string | null): Record<string, unknown> {
  try {
    const n = headerLength === null ? body.byteLength : Number(headerLength);
    const head = JSON.parse(new TextDecoder().decode(body.subarray(0, n))) as { parameters?: unknown };
    return typeof head.parameters === "object" && head.parameters
      ? (head.parameters as Record<string, unknown>)
      : {};
  } catch {
    return {};
  }
}

const header = (h: IncomingHttpHeaders, name: string) => {
  const v = h[name];
  return typeof v === "string" ? v : null;
};
const numberOrNull = (v: unknown) => (typeof v === "number" ? v : null);

/** Sends one request and records its answer. */
async function send(url: string, a: Arrival, req: InferRequestBytes, agent: Agent, signal: AbortSignal) {
  const start = now();
  try {
    const r = await exchange(`${url}/v2/models/${encodeURIComponent(a.model)}/infer`, {
      method: "POST",
      headers: req.headers,
      body: req.body,
      agent,
      signal,
    });
    const queue = header(r.headers, "x-cicada-queue-ms");
    const gateway = header(r.headers, "x-cicada-gateway-ms");
    const base = {
      latencyMs: now() - start,
      status: r.status,
      instance: header(r.headers, "x-cicada-instance"),
      queueMs: queue === null ? null : Number(queue),
      gatewayMs: gateway === null ? null : Number(gateway),
    };
    if (r.status !== 200) {
      let error = `HTTP ${r.status}`;
      try {
        error = (JSON.parse(r.body.toString("utf8")) as { error?: string }).error ?? error;
      } catch {
        // Not JSON: keep the status.
      }
      return { ...base, error, cold: null, loadMs: null, instanceMs: null };
    }
    const p = parametersOf(r.body, header(r.headers, "inference-header-content-length"));
    return {
      ...base,
      cold: header(r.headers, "x-cicada-cold") === "1",
      loadMs: numberOrNull(p.cicada_load_ms),
      instanceMs: numberOrNull(p.cicada_latency_ms),
    };
  } catch (e) {
    return {
      latencyMs: now() - start,
      status: 0,
      error: signal.aborted ? "abandoned at the end of the replay" : (e as Error).message,
      cold: null,
      instance: null,
      queueMs: null,
      gatewayMs: null,
      loadMs: null,
      instanceMs: null,
    };
  }
}

/** Sends every arrival at its time (open loop) and resolves with one record per request sent. */
export async function replayArrivals(
  o: ReplayOptions,
): Promise<{ records: RequestRecord[]; wallMs: number }> {
  const t0 = now();
  const abandon = new AbortController();
  // Every request in flight listens on it (hundreds in a burst): not a leak, so no warning past 10.
  setMaxListeners(Infinity, abandon.signal);
  const agent = new Agent({ keepAlive: true });
  const inFlight: Promise<void>[] = [];
  const records: RequestRecord[] = [];
  let done = 0;
  for (const a of o.arrivals) {
    if (a.t >= o.maxWallMs) break;
    const wait = t0 + a.t - now();
    if (wait > 1) await new Promise((r) => setTimeout(r, wait));
    const sentMs = now() - t0;
    const req = o.requests.get(a.model)!;
    inFlight.push(
      send(o.url, a, req, agent, abandon.signal).then((r) => {
        const record: RequestRecord = { func: a.func, model: a.model, scheduledMs: a.t, sentMs, ...r };
        records.push(record);
        o.onRecord?.(record, ++done);
      }),
    );
  }
  const timer = setTimeout(() => abandon.abort(), o.drainMs ?? 60_000);
  await Promise.all(inFlight);
  clearTimeout(timer);
  agent.destroy();
  records.sort((x, y) => x.scheduledMs - y.scheduledMs);
  return { records, wallMs: now() - t0 };
}

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
