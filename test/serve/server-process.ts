// Real `cicada serve` processes for end-to-end tests: started on an ephemeral loopback port (learnt from
// the listening line), never left behind (stopAll in `after`), never waited on forever (timeouts), and raw
// HTTP requests whose body the test sends in pieces, to hold a request open without timing anything.
import type { ChildProcess } from "node:child_process";
import { request as httpRequest, type ClientRequest, type IncomingHttpHeaders } from "node:http";
import { spawnServe, type ServeProcess } from "../../src/serve/serve-process.js";

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
