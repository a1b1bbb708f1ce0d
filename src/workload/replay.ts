// The open-loop replayer: every arrival of a trace is sent to the gateway at its (time-scaled) arrival
// time, whether or not earlier requests have been answered — so queueing at the platform shows up as
// latency, and a full queue as rejections (429), as it would for real clients. Bounded: it stops sending at
// --max-wall-s and abandons what is still outstanding a drain period later; loopback only. Each answer is
// recorded with the platform's facts (instance, cold, queue and load time); replay-summary.ts summarises a
// run as the paper reports it. It knows the platform only as a URL speaking the inference protocol, so it
// loads neither the platform nor onnxruntime (test/workload/no-onnxruntime.test.ts).
import { setMaxListeners } from "node:events";
import { Agent, type IncomingHttpHeaders } from "node:http";
import { now } from "../metrics/trace.js";
import { exchange } from "../util/http-exchange.js";
import type { Arrival } from "./trace-invocations.js";

/** A ready-to-send infer request (body and headers), one per model, sent as is for each of its arrivals. */
export interface InferRequestBytes {
  body: Uint8Array;
  headers: Record<string, string>;
}

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
