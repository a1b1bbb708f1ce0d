// AWS Lambda in front of the same core: an API Gateway HTTP API (payload format 2.0) or Lambda function
// URL event becomes a WHATWG Request, the core's Response becomes the result object Lambda expects, with
// binary bodies (the binary tensor extension) in base64 both ways. The instance (runtime, prepared
// bundles) is started once per execution environment, in Lambda's init phase, outside any request. An event
// no Request can stand for (a TRACE method, a malformed path or header) is answered with a coded error.
import { z } from "zod";
import { STRATEGIES } from "../../config.js";
import { CicadaError } from "../../errors.js";
import {
  INSTANCE_DEFAULTS,
  startInstance,
  type FunctionInstance,
  type InstanceOptions,
} from "./function-instance.js";
import { errorResponse, FORBIDDEN_METHODS, methodNotAllowed } from "./protocol-errors.js";
import { parseOrThrow } from "./protocol-schemas.js";

/** The fields of a payload-format-2.0 event the adapter reads (others are ignored). */
const LambdaEventSchema = z.object({
  version: z.literal("2.0"),
  rawPath: z.string().startsWith("/"),
  rawQueryString: z.string().default(""),
  headers: z.record(z.string(), z.string()).default({}),
  cookies: z.array(z.string()).optional(),
  body: z.string().optional(),
  isBase64Encoded: z.boolean().default(false),
  requestContext: z.object({
    domainName: z.string().optional(),
    http: z.object({ method: z.string().min(1) }),
  }),
});

/** What a Lambda function behind an HTTP API or a function URL returns. */
export interface LambdaResult {
  statusCode: number;
  headers: Record<string, string>;
  body: string;
  isBase64Encoded: boolean;
}

/** A Lambda handler. */
export type LambdaHandler = (event: unknown) => Promise<LambdaResult>;

/**
 * The Request an event stands for, or the 405 of a method a Request cannot carry (`allow` gives the
 * methods of a path, for its `Allow` header); E_REQUEST (naming the field) for an event of another shape.
 */
export function eventToRequest(
  event: unknown,
  allow: (path: string) => readonly string[] = () => [],
): Request | Response {
  const e = parseOrThrow(
    LambdaEventSchema,
    event,
    "Lambda event (API Gateway HTTP API / function URL, version 2.0)",
  );
  let headers: Headers;
  try {
    headers = new Headers(e.headers);
  } catch (err) {
    throw new CicadaError("E_REQUEST", `Lambda event: field 'headers': ${(err as Error).message}`);
  }
  if (e.cookies?.length) headers.set("cookie", e.cookies.join("; "));
  const host = e.requestContext.domainName ?? headers.get("host") ?? "lambda";
  let url: URL;
  try {
    url = new URL(`https://${host}${e.rawPath}${e.rawQueryString ? `?${e.rawQueryString}` : ""}`);
  } catch {
    throw new CicadaError("E_REQUEST", `Lambda event: field 'rawPath' is not a valid URL path`);
  }
  const method = e.requestContext.http.method.toUpperCase();
  if (FORBIDDEN_METHODS.has(method)) return methodNotAllowed(method, url.pathname, allow(url.pathname));
  const body =
    e.body === undefined || method === "GET" || method === "HEAD"
      ? null
      : Buffer.from(e.body, e.isBase64Encoded ? "base64" : "utf8");
  try {
    return new Request(url, { method, headers, body });
  } catch (err) {
    throw new CicadaError("E_REQUEST", `Lambda event: not a valid HTTP request: ${(err as Error).message}`);
  }
}

/** Lambda's result for a Response: text bodies as they are, others (octet-stream) in base64. */
export async function responseToResult(response: Response): Promise<LambdaResult> {
  const headers: Record<string, string> = {};
  response.headers.forEach((value, key) => (headers[key] = value));
  const bytes = Buffer.from(await response.arrayBuffer());
  const type = response.headers.get("content-type") ?? "";
  const text = type.startsWith("application/json") || type.startsWith("text/");
  return {
    statusCode: response.status,
    headers,
    body: bytes.toString(text ? "utf8" : "base64"),
    isBase64Encoded: !text,
  };
}

/** A Lambda handler over `handle` (the core's); `allow` gives a path's methods for the `Allow` of a 405. */
export function lambdaHandler(
  handle: (request: Request) => Promise<Response>,
  allow?: (path: string) => readonly string[],
): LambdaHandler {
  return async (event) => {
    let request: Request | Response;
    try {
      request = eventToRequest(event, allow);
    } catch (e) {
      return responseToResult(errorResponse(e));
    }
    return responseToResult(request instanceof Response ? request : await handle(request));
  };
}

const count = (min: number) => z.string().regex(/^\d+$/).transform(Number).pipe(z.number().int().min(min));
const EnvSchema = z.object({
  CICADA_BUNDLES: z.string().min(1),
  CICADA_STRATEGY: z.enum(STRATEGIES).optional(),
  CICADA_STATELESS: z.enum(["0", "1", "true", "false"]).optional(),
  CICADA_WORKERS: count(1).optional(),
  CICADA_MAX_BODY_BYTES: count(1).optional(),
  CICADA_MAX_RECEIVING_BYTES: count(1).optional(),
  CICADA_MAX_QUEUE: count(0).optional(),
  CICADA_TIMEOUT_MS: count(1).optional(),
});

/**
 * The instance configuration of a Lambda function from its environment: CICADA_BUNDLES (comma-separated
 * bundle directories, required), CICADA_STRATEGY, CICADA_STATELESS (1/true), CICADA_WORKERS,
 * CICADA_MAX_BODY_BYTES, CICADA_MAX_RECEIVING_BYTES (default 4 x the body limit), CICADA_MAX_QUEUE,
 * CICADA_TIMEOUT_MS; the cache root is CICADA_CACHE as everywhere.
 */
export function instanceOptionsFromEnv(
  env: Record<string, string | undefined> = process.env,
): InstanceOptions {
  const parsed = EnvSchema.safeParse(env);
  if (!parsed.success) {
    const issue = parsed.error.issues[0]!;
    throw new CicadaError("E_USAGE", `environment variable ${issue.path.join(".")}: ${issue.message}`);
  }
  const e = parsed.data;
  const d = INSTANCE_DEFAULTS;
  return {
    bundles: e.CICADA_BUNDLES.split(",")
      .map((b) => b.trim())
      .filter(Boolean),
    strategy: e.CICADA_STRATEGY ?? d.strategy,
    stateless: e.CICADA_STATELESS === "1" || e.CICADA_STATELESS === "true",
    workers: e.CICADA_WORKERS ?? d.workers,
    maxBodyBytes: e.CICADA_MAX_BODY_BYTES ?? d.maxBodyBytes,
    // Unset: 4 x the body limit as given, not the default's 256 MiB.
    ...(e.CICADA_MAX_RECEIVING_BYTES !== undefined
      ? { maxReceivingBytes: e.CICADA_MAX_RECEIVING_BYTES }
      : {}),
    maxQueue: e.CICADA_MAX_QUEUE ?? d.maxQueue,
    timeoutMs: e.CICADA_TIMEOUT_MS ?? d.timeoutMs,
    log: (line) => process.stderr.write(`cicada lambda: ${line}\n`),
  };
}

/**
 * Starts an instance and returns its Lambda handler (call it at module scope, in the init phase:
 * `export const handler = await createLambdaFunction(instanceOptionsFromEnv())`).
 */
export async function createLambdaFunction(
  options: InstanceOptions,
): Promise<LambdaHandler & { instance: FunctionInstance }> {
  const instance = await startInstance(options);
  return Object.assign(
    lambdaHandler(
      (r) => instance.server.handle(r),
      (path) => instance.server.allowed(path),
    ),
    { instance },
  );
}
