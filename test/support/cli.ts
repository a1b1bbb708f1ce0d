// Runs the real `cicada` command in a child process, as a user would, for end-to-end tests. The child runs
// the TypeScript sources through tsx (as the tests do), so a test never depends on dist/ being current;
// test/package/ covers the compiled command as installed from the packed tarball.
import { spawn } from "node:child_process";
import { cliArgs } from "../../src/util/own-entry.js";

/** `process.execPath` arguments that run `cicada` from the sources (append the command's arguments). */
export const CLI = cliArgs();

export interface CliResult {
  code: number | null;
  stdout: string;
  stderr: string;
}

/** Runs `cicada ...args` with `env` added to the environment; resolves when it exits. */
export function cicada(args: string[], env: Record<string, string> = {}): Promise<CliResult> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [...CLI, ...args], {
      env: { ...process.env, ...env },
      stdio: ["ignore", "pipe", "pipe"],
    });
    let stdout = "";
    let stderr = "";
    child.stdout.on("data", (d: Buffer) => (stdout += d.toString()));
    child.stderr.on("data", (d: Buffer) => (stderr += d.toString()));
    child.on("error", reject);
    child.on("close", (code) => resolve({ code, stdout, stderr }));
  });
}

/** Parses the JSON a command printed on stdout, with the whole output in the error if it is not JSON. */
export function json<T>(r: CliResult): T {
  try {
    return JSON.parse(r.stdout) as T;
  } catch {
    throw new Error(`not JSON (exit ${r.code}):\n${r.stdout}\n${r.stderr}`);
  }
}
