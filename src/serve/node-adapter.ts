// node:http in front of the core: each IncomingMessage becomes a WHATWG Request as soon as its headers
// have arrived (so the core admits or refuses it before any body byte is read), its body a pull-based
// stream that the core reads under its size limit; the Response goes back with its length. Closing is
// graceful: no new connections, every in-flight request finishes (bounded by a grace period), idle
// keep-alive connections are closed, then the rest.
import { createServer, type IncomingMessage, type Server, type ServerResponse } from "node:http";
import type { AddressInfo } from "node:net";
import { CicadaError } from "../errors.js";
import { errorResponse } from "./inference-protocol.js";

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

/**
 * The body of `req` as a pull-based stream: bytes are read from the connection only as the core asks for
 * them (highWaterMark 0), so a body the core refuses early is never buffered.
 */
function bodyStream(req: IncomingMessage): ReadableStream<Uint8Array> {
  return new ReadableStream<Uint8Array>(
    {
      pull(controller) {
        return new Promise<void>((resolve) => {
          const done = (finish: () => void) => {
            req.off("readable", next);
            req.off("end", onEnd);
            req.off("error", onError);
            req.off("close", onClose);
            finish();
            resolve();
          };
          const next = () => {
            const chunk = req.read() as Buffer | null;
            if (chunk !== null)
              done(() => controller.enqueue(new Uint8Array(chunk.buffer, chunk.byteOffset, chunk.length)));
            else if (req.readableEnded) done(() => controller.close());
          };
          const onEnd = () => done(() => controller.close());
          const onError = (e: Error) => done(() => controller.error(e));
          const onClose = () => {
            if (!req.complete)
              done(() => controller.error(new Error("the client closed the connection mid-body")));
          };
          req.on("readable", next);
          req.once("end", onEnd);
          req.once("error", onError);
          req.once("close", onClose);
          next();
        });
      },
    },
    { highWaterMark: 0 },
  );
}

function toRequest(req: IncomingMessage, origin: string): Request {
  const headers = new Headers();
  for (let i = 0; i < req.rawHeaders.length; i += 2)
    headers.append(req.rawHeaders[i]!, req.rawHeaders[i + 1]!);
  const method = req.method ?? "GET";
  const path = req.url ?? "/";
  const url = path.startsWith("/") ? `${origin}${path}` : new URL(path, origin).href;
  const body = method === "GET" || method === "HEAD" ? null : bodyStream(req);
  return new Request(url, { method, headers, body, duplex: "half" });
}

/**
 * Writes `response`. A body the core did not read to its end (refused early: 404, 413, 429, …) is
 * discarded if its declared length is within `drainLimit`, keeping the connection; otherwise (no length,
 * or a larger one) the connection is closed after the response, as it is while shutting down.
 */
async function send(
  req: IncomingMessage,
  res: ServerResponse,
  response: Response,
  closing: boolean,
  drainLimit: number,
): Promise<void> {
  const body = Buffer.from(await response.arrayBuffer());
  const headers: Record<string, string> = {};
  response.headers.forEach((value, key) => (headers[key] = value));
  headers["content-length"] = String(body.byteLength);
  const declared = Number(req.headers["content-length"] ?? NaN);
  const unread = !req.complete;
  const cut = unread && !(declared <= drainLimit);
  if (cut || closing) headers.connection = "close";
  res.writeHead(response.status, headers);
  res.end(body);
  if (unread) {
    res.once("finish", () => {
      req.resume();
      // NOTE: destroying the socket at once can reset the connection before the client has read the
      // response; give it a moment.
      if (cut) setTimeout(() => req.socket.destroy(), 1000).unref();
    });
  }
}

/** Serves `handle` on `host:port` (port 0: an ephemeral port) and resolves once listening. */
export async function listen(
  handle: (request: Request) => Promise<Response>,
  options: {
    host: string;
    port: number;
    /** Unread request bodies up to this size are discarded and the connection kept (default 1 MiB). */
    drainLimitBytes?: number;
    log?: (line: string) => void;
  },
): Promise<NodeServer> {
  let inFlight = 0;
  let closing = false;
  const idle: (() => void)[] = [];
  const server = createServer((req, res) => {
    inFlight++;
    res.once("close", () => {
      inFlight--;
      if (inFlight === 0) idle.splice(0).forEach((f) => f());
    });
    const answer = async () => {
      let response: Response;
      try {
        response = await handle(toRequest(req, origin));
      } catch (e) {
        options.log?.(`${req.method} ${req.url}: ${(e as Error).stack ?? String(e)}`);
        response = errorResponse(e);
      }
      await send(req, res, response, closing, options.drainLimitBytes ?? 1 << 20);
    };
    answer().catch((e: unknown) => {
      options.log?.(`${req.method} ${req.url}: could not send the response: ${(e as Error).message}`);
      res.destroy();
    });
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
  const origin = `http://${address.family === "IPv6" ? `[${address.address}]` : address.address}:${address.port}`;
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
