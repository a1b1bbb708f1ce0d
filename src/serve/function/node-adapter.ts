// node:http in front of the core: each IncomingMessage becomes a WHATWG Request as soon as its headers
// have arrived, its body a pull-based stream that the core reads under its size limit; the Response goes
// back with its length. What never reaches the core is answered here in the same coded JSON: requests
// Node's parser refuses (400; 405 for an unknown method; 408 for headers slower than --header-timeout-ms),
// methods a Request cannot carry (TRACE, CONNECT: 405), a body slower than its pace (408, connection cut).
// Closing is graceful: no new connections, every in-flight request finishes (bounded by a grace period),
// idle keep-alive connections are closed, then the rest.
import {
  createServer,
  STATUS_CODES,
  type IncomingMessage,
  type Server,
  type ServerResponse,
} from "node:http";
import type { AddressInfo } from "node:net";
import type { Duplex } from "node:stream";
import { CicadaError } from "../../errors.js";
import { now } from "../../metrics/trace.js";
import { httpOrigin } from "./listening-line.js";
import { errorResponse, FORBIDDEN_METHODS, methodNotAllowed } from "./protocol-errors.js";
import { bodyTooSlow, paceLeftMs, PACE_DEFAULTS, type BodyPace } from "./request-body.js";

/** A running server. */
export interface NodeServer {
  readonly server: Server;
  readonly host: string;
  readonly port: number;
  /** Requests received and not yet answered. */
  readonly inFlight: number;
  /**
   * Stops accepting, lets in-flight requests finish for at most `graceMs`, then closes every connection.
   * Resolves true if every request finished in time.
   */
  close(graceMs: number): Promise<boolean>;
}

/** Options of {@link listen}. */
export interface ListenOptions {
  host: string;
  port: number;
  /** Unread request bodies up to this size are discarded and the connection kept (default 1 MiB). */
  drainLimitBytes?: number;
  /** The request line and headers must arrive within it (default {@link PACE_DEFAULTS}); 408 past it. */
  headerTimeoutMs?: number;
  /** How fast a body must arrive (default {@link PACE_DEFAULTS}); 408 and the connection cut past it. */
  pace?: BodyPace;
  /** The methods the handler takes at a path, for the `Allow` header of a 405 answered here. */
  allow?: (path: string) => readonly string[];
  log?: (line: string) => void;
}

/**
 * The body of `req` as a pull-based stream: bytes are read from the connection only as the core asks for
 * them (highWaterMark 0), so a body the core refuses early is never buffered. While the core waits for
 * bytes that have not arrived, `pace` bounds the wait: past it the stream fails with E_BODY_TOO_SLOW.
 */
function bodyStream(req: IncomingMessage, pace: BodyPace): ReadableStream<Uint8Array> {
  const startedAt = now();
  const declared = Number(req.headers["content-length"] ?? NaN);
  let received = 0;
  let detach = () => {};
  return new ReadableStream<Uint8Array>(
    {
      pull(controller) {
        return new Promise<void>((resolve) => {
          const done = (finish: () => void) => {
            detach();
            // NOTE: the stream may have been cancelled meanwhile; a late chunk or error then goes nowhere.
            try {
              finish();
            } catch {
              // cancelled
            }
            resolve();
          };
          const next = () => {
            const chunk = req.read() as Buffer | null;
            if (chunk !== null) {
              received += chunk.length;
              done(() => controller.enqueue(new Uint8Array(chunk.buffer, chunk.byteOffset, chunk.length)));
            } else if (req.readableEnded) done(() => controller.close());
          };
          const onEnd = () => done(() => controller.close());
          const onError = (e: Error) => done(() => controller.error(e));
          const onClose = () => {
            if (!req.complete) {
              const of = Number.isFinite(declared) ? ` of ${declared}` : "";
              const e = new CicadaError(
                "E_REQUEST",
                `the client closed the connection after ${received}${of} bytes of the body`,
              );
              done(() => controller.error(e));
            }
          };
          const left = paceLeftMs(pace, startedAt, received, now());
          const timer = setTimeout(
            () => done(() => controller.error(bodyTooSlow(pace, received, now() - startedAt, declared))),
            Math.max(0, left),
          );
          detach = () => {
            clearTimeout(timer);
            req.off("readable", next);
            req.off("end", onEnd);
            req.off("error", onError);
            req.off("close", onClose);
            detach = () => {};
          };
          req.on("readable", next);
          req.once("end", onEnd);
          req.once("error", onError);
          req.once("close", onClose);
          next();
        });
      },
      cancel() {
        detach();
      },
    },
    { highWaterMark: 0 },
  );
}

function toRequest(req: IncomingMessage, url: string, pace: BodyPace): Request {
  const headers = new Headers();
  for (let i = 0; i < req.rawHeaders.length; i += 2)
    headers.append(req.rawHeaders[i]!, req.rawHeaders[i + 1]!);
  const method = req.method ?? "GET";
  const body = method === "GET" || method === "HEAD" ? null : bodyStream(req, pace);
  return new Request(url, { method, headers, body, duplex: "half" });
}

/**
 * Writes `response`. A body the core did not read to its end (refused early: 404, 413, 429, …) is
 * discarded if its declared length is within `drainLimit` and it keeps its pace, keeping the connection;
 * otherwise (no length, a larger one, a body too slow) the connection is closed after the response, as it
 * is while shutting down.
 */
async function send(
  req: IncomingMessage,
  res: ServerResponse,
  response: Response,
  closing: boolean,
  drainLimit: number,
  pace: BodyPace,
): Promise<void> {
  const body = Buffer.from(await response.arrayBuffer());
  const headers: Record<string, string> = {};
  response.headers.forEach((value, key) => (headers[key] = value));
  headers["content-length"] = String(body.byteLength);
  const declared = Number(req.headers["content-length"] ?? NaN);
  const unread = !req.complete;
  const cut = unread && (!(declared <= drainLimit) || response.status === 408);
  if (cut || closing) headers.connection = "close";
  res.writeHead(response.status, headers);
  res.end(body);
  if (unread) {
    res.once("finish", () => {
      req.resume();
      // NOTE: destroying the socket at once can reset the connection before the client has read the
      // response; give it a moment. A body drained to keep the connection must keep its pace too.
      const wait = cut ? 1000 : paceLeftMs(pace, now(), declared, now());
      setTimeout(() => {
        if (!req.complete) req.socket.destroy();
      }, wait).unref();
    });
  }
}

/** Writes a coded error `response` straight to a socket that has no ServerResponse, then closes it. */
async function sendRaw(socket: Duplex, response: Response): Promise<void> {
  const body = Buffer.from(await response.arrayBuffer());
  if (!socket.writable) return void socket.destroy();
  const lines = [`HTTP/1.1 ${response.status} ${STATUS_CODES[response.status] ?? ""}`];
  response.headers.forEach((value, key) => lines.push(`${key}: ${value}`));
  lines.push(`content-length: ${body.byteLength}`, "connection: close", "", "");
  socket.end(Buffer.concat([Buffer.from(lines.join("\r\n"), "latin1"), body]));
  setTimeout(() => socket.destroy(), 1000).unref();
}

/** The path of the request line in `raw` (what Node's parser refused), if it has one. */
function pathOf(raw: Buffer | undefined): string | undefined {
  const line = raw?.subarray(0, 8192).toString("latin1").split("\r\n", 1)[0] ?? "";
  const target = /^\S+ (\/\S*) HTTP\/1\.[01]$/.exec(line)?.[1];
  try {
    return target === undefined ? undefined : new URL(target, "http://x").pathname;
  } catch {
    return undefined;
  }
}

/** The coded answer to a request Node's HTTP parser refused (or timed out) before it became a request. */
function parserRefusal(
  e: NodeJS.ErrnoException & { rawPacket?: Buffer },
  headerTimeoutMs: number,
  allow: ((path: string) => readonly string[]) | undefined,
): Response {
  if (e.code === "HPE_INVALID_METHOD") {
    const raw = e.rawPacket?.subarray(0, 64).toString("latin1") ?? "";
    const method = /^[^\s]*/.exec(raw)?.[0] ?? "";
    const path = pathOf(e.rawPacket);
    return methodNotAllowed(method, path ?? "(unreadable path)", path && allow ? allow(path) : []);
  }
  if (e.code === "ERR_HTTP_REQUEST_TIMEOUT") {
    return errorResponse(
      new CicadaError(
        "E_BODY_TOO_SLOW",
        `the request did not arrive in time: its headers within ${headerTimeoutMs} ms (--header-timeout-ms), or its body at its pace`,
      ),
    );
  }
  const what =
    e.code === "HPE_HEADER_OVERFLOW" ? "its headers are larger than the server's limit" : e.message;
  return errorResponse(
    new CicadaError("E_REQUEST", `the request is not valid HTTP/1.1 (${e.code ?? "parse error"}: ${what})`),
  );
}

/** Serves `handle` on `host:port` (port 0: an ephemeral port) and resolves once listening. */
export async function listen(
  handle: (request: Request) => Promise<Response>,
  options: ListenOptions,
): Promise<NodeServer> {
  let inFlight = 0;
  let closing = false;
  const idle: (() => void)[] = [];
  const pace = options.pace ?? PACE_DEFAULTS;
  const drainLimit = options.drainLimitBytes ?? 1 << 20;
  const headerTimeoutMs = options.headerTimeoutMs ?? PACE_DEFAULTS.headerTimeoutMs;
  const server = createServer(
    {
      requireHostHeader: false,
      headersTimeout: headerTimeoutMs,
      requestTimeout: Math.max(300_000, headerTimeoutMs),
      connectionsCheckingInterval: Math.min(1000, Math.max(50, headerTimeoutMs / 4)),
    },
    (req, res) => {
      inFlight++;
      res.once("close", () => {
        inFlight--;
        if (inFlight === 0) idle.splice(0).forEach((f) => f());
      });
      const answer = async () => {
        let response: Response;
        try {
          const request = adapt(req);
          response = request instanceof Response ? request : await handle(request);
        } catch (e) {
          if (!(e instanceof CicadaError))
            options.log?.(`${req.method} ${req.url}: ${(e as Error).stack ?? String(e)}`);
          response = errorResponse(e);
        }
        await send(req, res, response, closing, drainLimit, pace);
      };
      answer().catch((e: unknown) => {
        options.log?.(`${req.method} ${req.url}: could not send the response: ${(e as Error).message}`);
        res.destroy();
      });
    },
  );
  /** The Request of `req`, or the 405 it gets instead (a method a Request cannot carry). */
  const adapt = (req: IncomingMessage): Request | Response => {
    const method = req.method ?? "GET";
    const target = req.url ?? "/";
    let url: URL;
    try {
      url = target.startsWith("/") ? new URL(`${origin}${target}`) : new URL(target, origin);
    } catch {
      throw new CicadaError("E_REQUEST", `the request target '${target.slice(0, 200)}' is not a valid URL`);
    }
    if (FORBIDDEN_METHODS.has(method.toUpperCase())) return refuse(method, url.pathname);
    try {
      return toRequest(req, url.href, pace);
    } catch (e) {
      throw new CicadaError("E_REQUEST", `the request cannot be read: ${(e as Error).message}`);
    }
  };
  const refuse = (method: string, path: string) =>
    methodNotAllowed(method, path, options.allow ? options.allow(path) : []);
  server.on("clientError", (e: NodeJS.ErrnoException & { rawPacket?: Buffer }, socket: Duplex) => {
    socket.on("error", () => {});
    const pending = (socket as Duplex & { _httpMessage?: ServerResponse })._httpMessage;
    if (e.code === "ECONNRESET" || !socket.writable || pending?.headersSent) return void socket.destroy();
    void sendRaw(socket, parserRefusal(e, headerTimeoutMs, options.allow)).catch(() => socket.destroy());
  });
  server.on("connect", (req: IncomingMessage, socket: Duplex) => {
    socket.on("error", () => {});
    void sendRaw(socket, refuse("CONNECT", req.url ?? "")).catch(() => socket.destroy());
  });
  server.on("checkExpectation", (req: IncomingMessage, res: ServerResponse) => {
    const e = new CicadaError(
      "E_REQUEST",
      `Expect: '${String(req.headers.expect).slice(0, 100)}' is not supported (only 100-continue)`,
    );
    send(req, res, errorResponse(e), closing, drainLimit, pace).catch(() => res.destroy());
  });
  await new Promise<void>((resolve, reject) => {
    server.once("error", (e: NodeJS.ErrnoException) =>
      reject(
        new CicadaError(
          "E_USAGE",
          `cannot listen on ${options.host}:${options.port}: ${e.code === "EADDRINUSE" ? "the address is in use" : e.message}`,
          { cause: e },
        ),
      ),
    );
    server.listen(options.port, options.host, () => resolve());
  });
  const address = server.address() as AddressInfo;
  const origin = httpOrigin(address.address, address.port);
  const closed = new Promise<void>((resolve) => server.once("close", () => resolve()));
  return {
    server,
    host: address.address,
    port: address.port,
    get inFlight() {
      return inFlight;
    },
    async close(graceMs: number): Promise<boolean> {
      closing = true;
      server.close();
      server.closeIdleConnections();
      const finished =
        inFlight === 0 ||
        (await new Promise<boolean>((resolve) => {
          const timer = setTimeout(() => resolve(false), graceMs);
          idle.push(() => {
            clearTimeout(timer);
            resolve(true);
          });
        }));
      server.closeAllConnections();
      await closed;
      return finished;
    },
  };
}
