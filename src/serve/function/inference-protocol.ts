// The function server's core: `handle(Request) → Response` speaking the Open Inference Protocol (KServe
// v2) REST API, its model repository extension and our `cicada` extension, over a ModelHost. It knows
// nothing of sockets or Lambda events: the Node http and Lambda adapters translate to and from the WHATWG
// Request/Response it takes and returns, and tests call it in-process. Errors leave as
// `{"error": "…", "code": "E_…"}` with the status their code maps to (and the code in `x-cicada-error`;
// protocol-errors.ts).
// A request's body is read before it takes a place in its model's queue: a slow sender holds a connection
// (until the adapter cuts it off), never a place that a complete request could use. What bodies still
// arriving hold is bounded server-wide instead (--max-receiving-bytes): past it, 503 E_SERVER_BUSY.
import { CicadaError } from "../../errors.js";
import { now } from "../../metrics/trace.js";
import { isStrategy, STRATEGIES, type StrategyName } from "../../config.js";
import { readProcessMemory } from "../../metrics/proc-memory.js";
import { PACKAGE_VERSION } from "../../util/package-version.js";
import { Deadline } from "./deadline.js";
import { errorResponse, json, methodNotAllowed, METHODS, statusOf } from "./protocol-errors.js";
import type { ModelHost } from "./model-host.js";
import type { Ticket } from "./request-queue.js";
import {
  parseOrThrow,
  RepositoryIndexSchema,
  RepositoryLoadSchema,
  tensorMetadata,
} from "./protocol-schemas.js";
import {
  optionalJson,
  readBody,
  ReceivingBudget,
  receivingBudgetBytes,
  type BodyLease,
} from "./request-body.js";
import { runFacts } from "./run-facts.js";
import { decodeInferRequest, encodeOutputs, inferResponseBody } from "./tensor-codec.js";

/** Options of {@link createInferenceServer}. */
export interface InferenceServerOptions {
  /** Largest request body accepted (413 past it). */
  maxBodyBytes: number;
  /**
   * Bytes all request bodies being received may hold together (503 E_SERVER_BUSY past it); default
   * 4 × `maxBodyBytes`.
   */
  maxReceivingBytes?: number;
  /** Per-request limit, request received → response ready (504 past it; the work it started goes on). */
  timeoutMs: number;
  /** Where internal errors are written (stderr in the CLI). */
  log?: (line: string) => void;
}

/** The core of one instance. */
export interface InferenceServer {
  handle(request: Request): Promise<Response>;
  /** The methods the routes at `path` take (empty when no route has that path). */
  allowed(path: string): string[];
  /** Stops taking work: readiness and new inference or load requests answer 503. */
  drain(): void;
  readonly draining: boolean;
}

/** The only model version: a bundle is one version of a model. */
const MODEL_VERSION = "1";
const EXTENSIONS = ["binary_tensor_data", "model_repository", "cicada"];

interface Context {
  request: Request;
  url: URL;
  received: number;
  params: Record<string, string>;
}

type Handler = (ctx: Context) => Promise<Response> | Response;

/** Path patterns: `:name` matches one segment; model routes also answer under `/versions/:version`. */
function routes(server: Handlers): { method: string; path: string[]; run: Handler }[] {
  const table: [string, string, Handler][] = [
    ["GET", "/v2", () => server.metadata()],
    ["GET", "/v2/health/live", () => json(200, { live: true })],
    ["GET", "/v2/health/ready", () => server.ready()],
    ["GET", "/v2/models/:model", (c) => server.modelMetadata(c)],
    ["GET", "/v2/models/:model/ready", (c) => server.modelReady(c)],
    ["POST", "/v2/models/:model/infer", (c) => server.infer(c)],
    ["POST", "/v2/repository/index", (c) => server.index(c)],
    ["POST", "/v2/repository/models/:model/load", (c) => server.load(c)],
    ["POST", "/v2/repository/models/:model/unload", (c) => server.unload(c)],
    ["GET", "/v2/cicada/instance", () => server.instance()],
  ];
  const out = table.map(([method, path, run]) => ({ method, path: path.split("/").slice(1), run }));
  for (const r of [...out]) {
    if (r.path[1] === "models")
      out.push({ ...r, path: [...r.path.slice(0, 3), "versions", ":version", ...r.path.slice(3)] });
  }
  return out;
}

function match(pattern: string[], segments: string[]): Record<string, string> | undefined {
  if (pattern.length !== segments.length) return undefined;
  const params: Record<string, string> = {};
  for (let i = 0; i < pattern.length; i++) {
    const p = pattern[i]!;
    if (p.startsWith(":")) params[p.slice(1)] = segments[i]!;
    else if (p !== segments[i]) return undefined;
  }
  return params;
}

/** The methods of the routes that match `segments`. */
function allowedAt(table: ReturnType<typeof routes>, segments: string[]): string[] {
  return [...new Set(table.filter((r) => match(r.path, segments)).map((r) => r.method))];
}

function segmentsOf(url: URL): string[] {
  try {
    return url.pathname.replace(/\/+$/, "").split("/").slice(1).map(decodeURIComponent);
  } catch {
    throw new CicadaError("E_REQUEST", `the path ${url.pathname} is not valid percent-encoding`);
  }
}

/** A strategy given by a client, checked. */
function strategyParam(value: unknown, field: string): StrategyName | undefined {
  if (value === undefined || value === null) return undefined;
  if (typeof value !== "string" || !isStrategy(value)) {
    throw new CicadaError(
      "E_REQUEST",
      `${field} must be one of ${STRATEGIES.join(", ")}, found ${JSON.stringify(value)}`,
    );
  }
  return value;
}

const round = (ms: number) => Math.round(ms * 1000) / 1000;

class Handlers {
  draining = false;
  /** Inference requests whose body is still arriving (they hold no place in a queue). */
  receiving = 0;
  /** The bytes that bodies being received hold (every route's), under --max-receiving-bytes. */
  readonly budget: ReceivingBudget;

  constructor(
    private readonly host: ModelHost,
    private readonly options: InferenceServerOptions,
  ) {
    this.budget = new ReceivingBudget(receivingBudgetBytes(options.maxBodyBytes, options.maxReceivingBytes));
  }

  /** A small JSON body (repository requests), read under the budget and parsed; the room given back. */
  private async jsonBody(ctx: Context, what: string): Promise<unknown> {
    const lease = this.budget.lease();
    try {
      return optionalJson(await readBody(ctx.request, this.options.maxBodyBytes, undefined, lease), what);
    } finally {
      lease.release();
    }
  }

  metadata(): Response {
    return json(200, { name: "cicada", version: PACKAGE_VERSION, extensions: EXTENSIONS });
  }

  ready(): Response {
    return this.draining
      ? json(
          503,
          { ready: false, error: "the server is shutting down" },
          { "x-cicada-error": "E_UNAVAILABLE" },
        )
      : json(200, { ready: true });
  }

  /** The model a route names (E_MODEL_UNKNOWN for an unknown name or version). */
  private model(ctx: Context): string {
    const name = ctx.params.model!;
    this.host.manifest(name);
    const version = ctx.params.version;
    if (version !== undefined && version !== MODEL_VERSION) {
      throw new CicadaError(
        "E_MODEL_UNKNOWN",
        `model ${name} has no version '${version}' (versions: ${MODEL_VERSION})`,
      );
    }
    return name;
  }

  private refuseWhenDraining(): void {
    if (this.draining)
      throw new CicadaError("E_UNAVAILABLE", "the server is shutting down and takes no new requests");
  }

  modelMetadata(ctx: Context): Response {
    const name = this.model(ctx);
    const m = this.host.manifest(name);
    return json(200, {
      name,
      versions: [MODEL_VERSION],
      platform: "onnxruntime_onnx",
      inputs: m.inputs.map(tensorMetadata),
      outputs: m.outputs.map(tensorMetadata),
    });
  }

  modelReady(ctx: Context): Response {
    const info = this.host.describe(this.model(ctx));
    if (info.state === "READY") return json(200, { name: info.name, ready: true });
    throw new CicadaError(
      "E_UNAVAILABLE",
      `model ${info.name} is ${info.state} (it is cold-started by its first inference request, or by POST /v2/repository/models/${info.name}/load)`,
    );
  }

  async infer(ctx: Context): Promise<Response> {
    this.refuseWhenDraining();
    const name = this.model(ctx);
    const manifest = this.host.manifest(name);
    const deadline = new Deadline(ctx.received, this.options.timeoutMs, `model ${name}`);
    let ticket: Ticket | undefined;
    let handedOver = false;
    const lease: BodyLease = this.budget.lease();
    try {
      // The body first, then a place in the queue: a request still arriving holds none (only its room in
      // the receiving budget, until it is decoded).
      this.receiving++;
      const body = await deadline
        .race(readBody(ctx.request, this.options.maxBodyBytes, deadline.signal, lease))
        .finally(() => this.receiving--);
      const decoded = decodeInferRequest(body, ctx.request.headers.get("inference-header-content-length"), {
        name,
        inputs: manifest.inputs,
        outputs: manifest.outputs,
      });
      lease.release();
      const own = decoded.parameters.cicada_timeout_ms;
      if (own !== undefined) {
        if (typeof own !== "number" || !(own > 0)) {
          throw new CicadaError(
            "E_REQUEST",
            `field 'parameters.cicada_timeout_ms': expected a positive number, found ${JSON.stringify(own)}`,
          );
        }
        deadline.shorten(own, "parameters.cicada_timeout_ms");
      }
      ticket = this.host.admit(name);
      handedOver = true;
      const run = await deadline.race(this.host.infer(name, ticket, decoded.feeds, deadline.signal));
      const encoded = encodeOutputs(decoded.outputs, run.outputs);
      const facts = runFacts(run, now() - ctx.received);
      const head = {
        model_name: name,
        model_version: MODEL_VERSION,
        ...(decoded.id !== undefined ? { id: decoded.id } : {}),
        parameters: facts.parameters,
      };
      const { body: out, headerLength } = inferResponseBody(head, encoded);
      const headers: Record<string, string> = {
        ...facts.headers,
        "content-type": headerLength === undefined ? "application/json" : "application/octet-stream",
        ...(headerLength === undefined ? {} : { "inference-header-content-length": String(headerLength) }),
      };
      return new Response(out, { status: 200, headers });
    } finally {
      lease.release();
      deadline.clear();
      if (!handedOver) ticket?.release();
    }
  }

  async index(ctx: Context): Promise<Response> {
    const body = await this.jsonBody(ctx, "repository index");
    const { ready } = parseOrThrow(RepositoryIndexSchema, body ?? {}, "repository index");
    const models = this.host
      .list()
      .filter((m) => !ready || m.state === "READY")
      .map((m) => ({ name: m.name, version: MODEL_VERSION, state: m.state, reason: "" }));
    return json(200, models);
  }

  async load(ctx: Context): Promise<Response> {
    this.refuseWhenDraining();
    const name = this.model(ctx);
    const body = await this.jsonBody(ctx, `load of ${name}`);
    const { parameters } = parseOrThrow(RepositoryLoadSchema, body ?? {}, `load of ${name}`);
    const fromQuery = strategyParam(
      ctx.url.searchParams.get("strategy") ?? undefined,
      "query parameter 'strategy'",
    );
    const fromBody = strategyParam(parameters?.strategy, "field 'parameters.strategy'");
    if (fromQuery && fromBody && fromQuery !== fromBody) {
      throw new CicadaError(
        "E_REQUEST",
        `load of ${name}: the query says strategy ${fromQuery}, the body ${fromBody}`,
      );
    }
    const t0 = now();
    const deadline = new Deadline(ctx.received, this.options.timeoutMs, `load of ${name}`);
    const info = await deadline
      .race(this.host.load(name, fromQuery ?? fromBody))
      .finally(() => deadline.clear());
    return json(200, { ...info, load_ms: round(now() - t0) });
  }

  async unload(ctx: Context): Promise<Response> {
    const name = this.model(ctx);
    return json(200, await this.host.unload(name));
  }

  instance(): Response {
    const m = readProcessMemory();
    return json(200, {
      pid: m.pid,
      rssBytes: m.rssBytes,
      rssAnonBytes: m.rssAnonBytes,
      pssBytes: m.pssBytes,
      pssAnonBytes: m.pssAnonBytes,
      pssFileBytes: m.pssFileBytes,
      receiving: this.receiving,
      receivingBytes: this.budget.held,
      maxReceivingBytes: this.budget.limitBytes,
      models: this.host.list(),
    });
  }
}

/** The protocol over `host`: route, validate, run, answer. */
export function createInferenceServer(host: ModelHost, options: InferenceServerOptions): InferenceServer {
  const handlers = new Handlers(host, options);
  const table = routes(handlers);
  return {
    get draining() {
      return handlers.draining;
    },
    drain() {
      handlers.draining = true;
    },
    allowed(path: string): string[] {
      try {
        return allowedAt(table, segmentsOf(new URL(path, "http://x")));
      } catch {
        return [];
      }
    },
    async handle(request: Request): Promise<Response> {
      const received = now();
      try {
        const url = new URL(request.url);
        const segments = segmentsOf(url);
        const allowed = allowedAt(table, segments);
        if (!METHODS.includes(request.method) || (allowed.length > 0 && !allowed.includes(request.method)))
          return methodNotAllowed(request.method, url.pathname, allowed);
        if (allowed.length === 0) throw new CicadaError("E_ROUTE_UNKNOWN", `no endpoint ${url.pathname}`);
        const hit = table
          .map((r) => ({ r, params: r.method === request.method ? match(r.path, segments) : undefined }))
          .find((f) => f.params)!;
        return await hit.r.run({ request, url, received, params: hit.params! });
      } catch (e) {
        if (statusOf(e) === 500)
          options.log?.(`${request.method} ${request.url}: ${(e as Error).stack ?? String(e)}`);
        return errorResponse(e);
      }
    },
  };
}
