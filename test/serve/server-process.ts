// Real `cicada serve` processes for end-to-end tests: started on an ephemeral loopback port (learnt from
// the listening line), never left behind (stopAll in `after`), never waited on forever (timeouts), and raw
// HTTP requests whose body the test sends in pieces, to hold a request open without timing anything.
import { spawn, type ChildProcess } from "node:child_process";
import { request as httpRequest, type ClientRequest, type IncomingHttpHeaders } from "node:http";
import { fileURLToPath } from "node:url";

const BIN = fileURLToPath(new URL("../../bin/cicada.js", import.meta.url));
const running = new Set<ChildProcess>();

/** A started server process. */
export interface ServerProcess {
  port: number;
  pid: number;
  /** `http://127.0.0.1:<port>` */
  base: string;
  child: ChildProcess;
  /** What it wrote on stderr so far. */
  stderr(): string;
  /** What it wrote on stdout so far. */
  stdout(): string;
  /** Resolves with the exit code when it has exited. */
  exited: Promise<number | null>;
  /** Sends `signal` (default SIGTERM) and waits for the exit (SIGKILL after `timeoutMs`). */
  stop(signal?: NodeJS.Signals, timeoutMs?: number): Promise<number | null>;
}

/** Starts `cicada serve ...args --port 0` and resolves when it printed its listening line. */
export function startServer(
  args: string[],
  env: Record<string, string> = {},
  timeoutMs = 60_000,
): Promise<ServerProcess> {
  const child = spawn(process.execPath, [BIN, "serve", ...args, "--port", "0"], {
    env: { ...process.env, ...env },
    stdio: ["ignore", "pipe", "pipe"],
  });
  running.add(child);
  let stderr = "";
  let stdout = "";
  let started = false;
  child.stderr.on("data", (d: Buffer) => (stderr += d.toString()));
  const exited = new Promise<number | null>((resolve) =>
    child.once("exit", (code, signal) => {
      running.delete(child);
      resolve(code ?? (signal ? -1 : null));
    }),
  );
  const stop = async (signal: NodeJS.Signals = "SIGTERM", limit = 30_000) => {
    if (child.exitCode === null && child.signalCode === null) child.kill(signal);
    const timer = setTimeout(() => child.kill("SIGKILL"), limit);
    try {
      return await exited;
    } finally {
      clearTimeout(timer);
    }
  };
  return new Promise<ServerProcess>((resolve, reject) => {
    const timer = setTimeout(() => {
      child.kill("SIGKILL");
      reject(new Error(`cicada serve did not listen within ${timeoutMs} ms:\n${stderr}`));
    }, timeoutMs);
    child.stdout.on("data", (d: Buffer) => {
      stdout += d.toString();
      const newline = stdout.indexOf("\n");
      if (newline < 0 || started) return;
      started = true;
      clearTimeout(timer);
      const line = JSON.parse(stdout.slice(0, newline)) as {
        event: string;
        host: string;
        port: number;
        pid: number;
      };
      if (line.event !== "listening") reject(new Error(`unexpected first line: ${stdout}`));
      const base = `http://127.0.0.1:${line.port}`;
      resolve({
        port: line.port,
        pid: line.pid,
        base,
        child,
        stderr: () => stderr,
        stdout: () => stdout,
        exited,
        stop,
      });
    });
    void exited.then((code) => {
      clearTimeout(timer);
      reject(new Error(`cicada serve exited with ${code} before listening:\n${stderr}`));
    });
  });
}

/** Kills every server process still running (for `after`). */
export async function stopAll(): Promise<void> {
  await Promise.all(
    [...running].map(
      (child) =>
        new Promise<void>((resolve) => {
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
