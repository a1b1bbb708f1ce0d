// The platform's gateway: the same Open Inference Protocol (KServe v2) REST API as one instance, in front
// of the pool. An infer request is queued and handed to an instance by the dispatcher as the policy says;
// its answer goes back as the instance gave it (status, body, the cold-start headers), with the gateway's
// own `x-cicada-instance` (who served it) and `x-cicada-queue-ms` (how long it waited for an instance).
// When an instance dies mid-request the client gets a 502 naming it; nothing waits past --timeout-ms. The
// bodies still arriving share one budget (--max-receiving-bytes, function/request-body.ts's
// ReceivingBudget, as an instance's do): past it a body is answered 503 E_SERVER_BUSY with Retry-After
// before it is read. Like the instance's core, the gateway is a pure `handle(Request) → Response`;
// function/node-adapter.ts serves it.
import { CicadaError } from "../../errors.js";
import type { Manifest } from "../../format/manifest.js";
import { now } from "../../metrics/trace.js";
import { PACKAGE_VERSION } from "../../util/package-version.js";
import type { Dispatcher } from "./gateway-dispatch.js";
import { errorResponse, json, methodNotAllowed } from "../function/protocol-errors.js";
import type { InstancePool } from "./instance-pool.js";
import type { MemoryLedger } from "./pool-memory.js";
import { readBody, ReceivingBudget, receivingBudgetBytes } from "../function/request-body.js";

/** What the gateway fronts. */
export interface GatewayParts {
  pool: InstancePool;
  dispatcher: Dispatcher;
  ledger: MemoryLedger;
  /** The served models, by name. */
  models: ReadonlyMap<string, Manifest>;
  maxBodyBytes: number;
  /**
   * Bytes all request bodies still arriving may hold together (503 E_SERVER_BUSY past it; at least
   * `maxBodyBytes`); default RECEIVING_BODIES (4) × `maxBodyBytes`.
   */
  maxReceivingBytes?: number;
  /** Facts about the platform reported by `GET /v2/cicada/platform` (policy, strategy, limits). */
  describe: Record<string, unknown>;
}

/** What a running gateway keeps beside its parts: the budget of bodies being received and their count. */
interface Gateway extends GatewayParts {
  readonly budget: ReceivingBudget;
  /** Infer requests whose body is still arriving. */
  receiving: number;
}

/**
 * The budget of bodies being received: `maxReceivingBytes`, else RECEIVING_BODIES (4) × `maxBodyBytes`;
 * E_USAGE when it is smaller than `maxBodyBytes` (a body of the largest size accepted could never be
 * received).
 */
export function gatewayBudget(maxBodyBytes: number, maxReceivingBytes?: number): ReceivingBudget {
  return new ReceivingBudget(receivingBudgetBytes(maxBodyBytes, maxReceivingBytes));
}

/** Headers of a client's request passed on to the instance, and of the instance's reply passed back. */
const REQUEST_HEADERS = ["content-type", "inference-header-content-length"];
const REPLY_HEADERS = [
  "content-type",
  "inference-header-content-length",
  "x-cicada-cold",
  "server-timing",
  "x-cicada-error",
  "retry-after",
];

/** Routes: method, pattern (model routes also under /versions/N), handler. */
type Route = [
  string,
  RegExp,
  (g: Gateway, request: Request, match: string[]) => Promise<Response> | Response,
];

const MODEL = "/v2/models/([^/]+)(?:/versions/[^/]+)?";
const ROUTES: Route[] = [
  [
    "GET",
    /^\/v2$/,
    () =>
      json(200, {
        name: "cicada-platform",
        version: PACKAGE_VERSION,
        extensions: ["binary_tensor_data", "model_repository", "cicada"],
      }),
  ],
  ["GET", /^\/v2\/health\/live$/, () => json(200, { live: true })],
  [
    "GET",
    /^\/v2\/health\/ready$/,
    (g) =>
      g.pool.instances.length > 0
        ? json(200, { ready: true })
        : json(503, { ready: false, error: "no instance is running yet" }),
  ],
  ["GET", new RegExp(`^${MODEL}$`), (g, _r, m) => metadata(g, m[1]!)],
  ["GET", new RegExp(`^${MODEL}/ready$`), (g, _r, m) => json(200, { name: known(g, m[1]!), ready: true })],
  ["POST", new RegExp(`^${MODEL}/infer$`), (g, r, m) => infer(g, r, m[1]!)],
  ["POST", /^\/v2\/repository\/index$/, (g) => json(200, index(g))],
  ["GET", /^\/v2\/cicada\/platform$/, (g) => json(200, platformState(g))],
];

function known(g: GatewayParts, name: string): string {
  if (!g.models.has(name)) {
    throw new CicadaError(
      "E_MODEL_UNKNOWN",
      `no served model is named '${name}' (served: ${[...g.models.keys()].join(", ")})`,
    );
  }
  return name;
}

/** Model metadata, as any instance gives it (they serve the same bundles). */
async function metadata(g: GatewayParts, name: string): Promise<Response> {
  known(g, name);
  const instance = g.pool.instances[0];
  if (!instance) throw new CicadaError("E_UNAVAILABLE", "no instance is running yet");
  const r = await instance.request("GET", `/v2/models/${encodeURIComponent(name)}`, {}, 10_000);
  return new Response(r.body, { status: r.status, headers: { "content-type": "application/json" } });
}

async function infer(g: Gateway, request: Request, name: string): Promise<Response> {
  const received = now();
  known(g, name);
  // The body holds its room in the budget while it arrives (its declared length before any byte is read);
  // the room is given back once it is read, or here when reading fails (readBody releases it then).
  const lease = g.budget.lease();
  let body: Uint8Array;
  g.receiving++;
  try {
    body = await readBody(request, g.maxBodyBytes, undefined, lease);
  } finally {
    g.receiving--;
    lease.release();
  }
  const headers: Record<string, string> = {};
  for (const h of REQUEST_HEADERS) {
    const v = request.headers.get(h);
    if (v !== null) headers[h] = v;
  }
  const d = await g.dispatcher.submit(name, body, headers, received);
  const out: Record<string, string> = {
    "x-cicada-instance": d.instance,
    "x-cicada-queue-ms": d.queueMs.toFixed(2),
    "x-cicada-gateway-ms": (now() - received).toFixed(2),
  };
  for (const h of REPLY_HEADERS) {
    const v = d.reply.headers.get(h);
    if (v !== null) out[h] = v;
  }
  return new Response(d.reply.body, { status: d.reply.status, headers: out });
}

/** The repository index across the pool: READY where loaded on some instance, LOADING, or UNAVAILABLE. */
function index(g: GatewayParts) {
  return [...g.models.keys()].map((name) => {
    const on = (state: string) =>
      g.pool.instances.filter((i) => i.models.get(name)?.state === state).map((i) => i.id);
    const ready = on("ready");
    const loading = on("loading");
    const state = ready.length ? "READY" : loading.length ? "LOADING" : "UNAVAILABLE";
    const reason = ready.length
      ? `ready on ${ready.join(", ")}`
      : loading.length
        ? `loading on ${loading.join(", ")}`
        : "cold-started by its next request";
    return { name, version: "1", state, reason };
  });
}

/** `GET /v2/cicada/platform`: the instances, their lifecycle and memory, the queue, the counters. */
function platformState(g: Gateway) {
  const MiB = 2 ** 20;
  return {
    ...g.describe,
    queued: g.dispatcher.queued,
    receiving: g.receiving,
    receivingBytes: g.budget.held,
    maxReceivingBytes: g.budget.limitBytes,
    stats: g.dispatcher.stats,
    memory: {
      hostBytes: g.ledger.hostBytes(),
      rssSumBytes: g.ledger.rssSumBytes(),
      anonSumBytes: g.ledger.anonSumBytes(),
      pinnedBytes: g.ledger.pinnedBytes,
      hostMiB: Math.round(g.ledger.hostBytes() / MiB),
    },
    instances: g.pool.instances.map((i) => ({
      id: i.id,
      pid: i.pid,
      url: i.url,
      state: i.state,
      served: i.served,
      coldServed: i.coldServed,
      models: [...i.models].map(([name, s]) => ({ name, state: s.state, lastUsed: s.lastUsed })),
      memory: g.ledger.memoryOf(i.id) ?? null,
    })),
  };
}

/**
 * The gateway's `handle`: routes, and maps every failure to `{"error": …, "code": …}` with its status (and
 * the code in `x-cicada-error`), as an instance does.
 */
export function createGateway(parts: GatewayParts): (request: Request) => Promise<Response> {
  const g: Gateway = {
    ...parts,
    budget: gatewayBudget(parts.maxBodyBytes, parts.maxReceivingBytes),
    receiving: 0,
  };
  return async (request) => {
    try {
      const url = new URL(request.url);
      const path = url.pathname.replace(/\/+$/, "") || "/";
      const allowed: string[] = [];
      for (const [method, pattern, run] of ROUTES) {
        const m = pattern.exec(path);
        if (!m) continue;
        allowed.push(method);
        if (method !== request.method) continue;
        return await run(
          g,
          request,
          m.map((s) => (s === undefined ? s : decodeURIComponent(s))),
        );
      }
      // As the function server answers: 405 naming the path's methods in `Allow`.
      if (allowed.length) return methodNotAllowed(request.method, path, allowed);
      throw new CicadaError(
        "E_ROUTE_UNKNOWN",
        `no endpoint ${request.method} ${path} at the platform gateway`,
      );
    } catch (e) {
      // A busy gateway says when to retry, as an instance does (an instance's own Retry-After passes through).
      return errorResponse(e);
    }
  };
}
