// The protocol's JSON bodies and answers to failure, the one copy shared by the function server's core, its
// adapters (Node http, Lambda) and the platform's gateway: every error leaves as
// `{"error": "…", "code": "E_…"}` with the HTTP status its code maps to (one table, the platform's codes
// included) and the code in `x-cicada-error`; a 405 names the methods of the path (`Allow`), a 503
// E_SERVER_BUSY says when to retry (`Retry-After`).
import { CicadaError, isCicadaError, type ErrorCode } from "../../errors.js";

/**
 * HTTP status of each error code. Codes not listed are 500 (with their code): the server or its model is
 * broken (E_RUNTIME, E_OUTPUT_MISSING, E_BUNDLE_* such as E_BUNDLE_CHECKSUM, E_CACHE, E_NO_SPACE, …), not
 * the request. A 500 without a code from the table (E_INTERNAL) is a bug. E_INSTANCE_DIED and E_HOST_MEMORY
 * are the platform's: only its gateway answers them (an instance that failed upstream: 502; no memory for a
 * load: 503).
 */
const STATUS: Partial<Record<ErrorCode, number>> = {
  E_REQUEST: 400,
  E_INPUT_NAME: 400,
  E_INPUT_SHAPE: 400,
  E_INPUT_DTYPE: 400,
  E_MODEL_UNKNOWN: 404,
  E_ROUTE_UNKNOWN: 404,
  E_METHOD_NOT_ALLOWED: 405,
  E_BODY_TOO_SLOW: 408,
  E_BODY_TOO_LARGE: 413,
  E_INPUT_LIMIT: 413,
  E_QUEUE_FULL: 429,
  E_SERVER_BUSY: 503,
  E_UNAVAILABLE: 503,
  E_TIMEOUT: 504,
  E_INSTANCE_DIED: 502,
  E_HOST_MEMORY: 503,
  // The model cannot be loaded under this instance's memory budget by its strategy: no retry helps.
  E_MEMORY_BUDGET: 507,
};

/** The HTTP status an error answers with. */
export function statusOf(e: unknown): number {
  return isCicadaError(e) ? (STATUS[e.code] ?? 500) : 500;
}

/** The methods some route of the core takes; any other method is refused on every path. */
export const METHODS: readonly string[] = ["GET", "POST"];

/**
 * Methods a WHATWG Request refuses to carry (upper case): the adapters (node:http, Lambda) answer them 405
 * themselves, since they can never reach the core.
 */
export const FORBIDDEN_METHODS: ReadonlySet<string> = new Set(["CONNECT", "TRACE", "TRACK"]);

/** A JSON response. */
export function json(status: number, body: unknown, headers: Record<string, string> = {}): Response {
  return new Response(JSON.stringify(body), {
    status,
    headers: { "content-type": "application/json", ...headers },
  });
}

/**
 * `{"error": message, "code": code}` with the status of its code (and `headers`); E_SERVER_BUSY says when
 * to retry (`Retry-After: 1`).
 */
export function errorResponse(e: unknown, headers: Record<string, string> = {}): Response {
  const code = isCicadaError(e) ? e.code : "E_INTERNAL";
  const message = isCicadaError(e) ? e.message : `internal error: ${(e as Error).message ?? String(e)}`;
  const retry: Record<string, string> = code === "E_SERVER_BUSY" ? { "retry-after": "1" } : {};
  return json(statusOf(e), { error: message, code }, { ...retry, ...headers, "x-cicada-error": code });
}

/**
 * 405 for `method` on `path`: E_METHOD_NOT_ALLOWED, with `Allow` when some route has that path (`allowed`
 * lists its methods). Adapters answer it themselves for methods a WHATWG Request cannot carry (TRACE,
 * CONNECT, a token HTTP parsers refuse).
 */
export function methodNotAllowed(method: string, path: string, allowed: readonly string[]): Response {
  const shown = JSON.stringify(method.length > 40 ? `${method.slice(0, 40)}…` : method);
  const takes = allowed.length > 0 ? `; ${path} takes ${allowed.join(", ")}` : "";
  const error = METHODS.includes(method)
    ? new CicadaError("E_METHOD_NOT_ALLOWED", `${path} takes ${allowed.join(", ")}, not ${method}`)
    : new CicadaError(
        "E_METHOD_NOT_ALLOWED",
        `method ${shown} is not one this server takes (${METHODS.join(", ")})${takes}`,
      );
  return errorResponse(error, allowed.length > 0 ? { allow: allowed.join(", ") } : {});
}
