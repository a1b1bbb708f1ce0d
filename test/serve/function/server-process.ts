// Real `cicada serve` processes for end-to-end tests: started on an ephemeral loopback port (learnt from
// the listening line), never left behind (stopAll in `after`), never waited on forever (timeouts), raw
// HTTP requests whose body the test sends in pieces, to hold a request open without timing anything, and
// raw bytes over a socket, for what no HTTP client would send.
import type { ChildProcess } from "node:child_process";
import { request as httpRequest, type ClientRequest, type IncomingHttpHeaders } from "node:http";
import { connect } from "node:net";
import { spawnServe, type ServeProcess } from "../../../src/serve/function/serve-process.js";

const running = new Set<ChildProcess>();

/** A started server process. */
export type ServerProcess = ServeProcess;

/** Starts `cicada serve ...args --port 0`, remembered for {@link stopAll}, once it printed its listening line. */
export async function startServer(
  args: string[],
  env: Record<string, string> = {},
  timeoutMs = 60_000,
): Promise<ServerProcess> {
  const server = await spawnServe([...args, "--port", "0"], { env, timeoutMs });
  running.add(server.child);
  void server.exited.then(() => running.delete(server.child));
  return server;
}

/** Kills every server process still running (for `after`). */
export async function stopAll(): Promise<void> {
  await Promise.all(
    [...running].map(
      (child) =>
        new Promise<void>((resolve) => {
          if (child.exitCode !== null || child.signalCode !== null) return resolve();
          child.once("exit", () => resolve());
          child.kill("SIGKILL");
        }),
    ),
  );
}

/** A response read whole. */
export interface RawResponse {
  status: number;
  headers: IncomingHttpHeaders;
  body: Buffer;
}

/** A request whose headers are sent at once and whose body the caller writes (and ends) when it wants. */
export function openRequest(
  base: string,
  path: string,
  headers: Record<string, string | number>,
): { req: ClientRequest; response: Promise<RawResponse> } {
  const req = httpRequest(`${base}${path}`, { method: "POST", headers, agent: false });
  const response = new Promise<RawResponse>((resolve, reject) => {
    req.once("response", (res) => {
      const chunks: Buffer[] = [];
      res.on("data", (c: Buffer) => chunks.push(c));
      res.once("end", () =>
        resolve({ status: res.statusCode ?? 0, headers: res.headers, body: Buffer.concat(chunks) }),
      );
      res.once("error", reject);
    });
    req.once("error", reject);
  });
  // The body may be refused (and the connection closed) while it is being written.
  response.catch(() => {});
  req.flushHeaders();
  return { req, response };
}

/** Polls `probe` every 20 ms until it returns true, failing after `timeoutMs`. */
export async function until(what: string, probe: () => Promise<boolean>, timeoutMs = 20_000): Promise<void> {
  const end = Date.now() + timeoutMs;
  while (!(await probe())) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

/** What came back over a raw socket: the first response (if any) and whether the server closed. */
export interface RawReply {
  /** Status of the first response, undefined if none arrived. */
  status?: number;
  /** Its headers, names in lower case. */
  headers: Record<string, string>;
  /** Its body (by its content-length). */
  body: Buffer;
  /** The server closed the connection (before or after answering). */
  closed: boolean;
  /** Nothing settled within the time limit (the socket was destroyed then). */
  timedOut: boolean;
  /** Milliseconds from connecting to the answer (or the close, or the time limit). */
  ms: number;
}

/** Parses the first response in `data`, once complete (by its content-length). */
function firstResponse(data: Buffer): Omit<RawReply, "closed" | "timedOut" | "ms"> | undefined {
  const end = data.indexOf("\r\n\r\n");
  if (end < 0) return undefined;
  const [statusLine, ...lines] = data.subarray(0, end).toString("latin1").split("\r\n");
  const headers: Record<string, string> = {};
  for (const line of lines) {
    const colon = line.indexOf(":");
    if (colon > 0) headers[line.slice(0, colon).trim().toLowerCase()] = line.slice(colon + 1).trim();
  }
  const length = Number(headers["content-length"] ?? 0);
  if (data.length < end + 4 + length) return undefined;
  const status = Number(/^HTTP\/1\.[01] (\d{3})/.exec(statusLine ?? "")?.[1] ?? NaN);
  return { status, headers, body: data.subarray(end + 4, end + 4 + length) };
}

/**
 * Sends `parts` over a new connection to 127.0.0.1:`port`, `gapMs` apart, then half-closes it if `end`;
 * resolves with the first response once complete, or when the server closes, or after `timeoutMs`.
 */
export function rawExchange(
  port: number,
  parts: (string | Buffer)[],
  options: { gapMs?: number; end?: boolean; timeoutMs?: number } = {},
): Promise<RawReply> {
  const started = Date.now();
  return new Promise((resolve) => {
    const socket = connect(port, "127.0.0.1");
    let data = Buffer.alloc(0);
    let settled = false;
    const timers: NodeJS.Timeout[] = [];
    const settle = (closed: boolean, timedOut: boolean) => {
      if (settled) return;
      settled = true;
      timers.forEach(clearTimeout);
      const reply = firstResponse(data);
      socket.destroy();
      resolve({ headers: {}, body: data, ...reply, closed, timedOut, ms: Date.now() - started });
    };
    socket.on("data", (d: Buffer) => {
      data = Buffer.concat([data, d]);
      if (firstResponse(data)) settle(false, false);
    });
    socket.on("error", () => settle(true, false));
    socket.on("close", () => settle(true, false));
    timers.push(setTimeout(() => settle(false, true), options.timeoutMs ?? 10_000));
    socket.on("connect", () => {
      parts.forEach((part, i) =>
        timers.push(
          setTimeout(
            () => {
              if (settled || socket.destroyed) return;
              socket.write(part);
              if (i === parts.length - 1 && options.end) socket.end();
            },
            i * (options.gapMs ?? 0),
          ),
        ),
      );
      if (parts.length === 0 && options.end) socket.end();
    });
  });
}

/** A raw HTTP/1.1 request with `Connection: close` (and the Content-Length of `body` unless `length` is false). */
export function http(
  method: string,
  path: string,
  body: string | Buffer = "",
  headers: Record<string, string | number> = {},
  length = true,
): Buffer {
  const b = Buffer.isBuffer(body) ? body : Buffer.from(body);
  const lines = [
    `${method} ${path} HTTP/1.1`,
    "Host: fuzz",
    "Connection: close",
    ...(length ? [`Content-Length: ${b.length}`] : []),
    ...Object.entries(headers).map(([k, v]) => `${k}: ${v}`),
    "",
    "",
  ];
  return Buffer.concat([Buffer.from(lines.join("\r\n"), "latin1"), b]);
}
