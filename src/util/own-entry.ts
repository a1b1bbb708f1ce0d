// How the package starts a process on one of its own modules (the `cicada` command for serve instances
// and benchmarks). As shipped, everything is compiled JavaScript under dist/ and a child runs it with
// plain `node`. In development and tests the package runs from its TypeScript sources (this file's own URL
// ends in .ts): a child then runs the same module's source through tsx's loader, so that tests never
// depend on a build being current.
import { fileURLToPath } from "node:url";
import { Worker, type WorkerOptions } from "node:worker_threads";

/** True when this package runs from its TypeScript sources (through tsx), not from dist/. */
export const FROM_SOURCE = import.meta.url.endsWith(".ts");

/** The URL of own module `path` (relative to src/ or dist/, without extension), in the running form. */
export function ownModule(path: string): URL {
  return new URL(`../${path}${FROM_SOURCE ? ".ts" : ".js"}`, import.meta.url);
}

/** Node arguments before a script: tsx's loader, by absolute URL, when running from the sources. */
export function loaderArgs(): string[] {
  return FROM_SOURCE ? ["--import", import.meta.resolve("tsx")] : [];
}

/** `process.execPath` arguments that run the `cicada` command (append the command's own arguments). */
export function cliArgs(): string[] {
  return [...loaderArgs(), fileURLToPath(ownModule("cli/main"))];
}

/**
 * Starts a worker thread on own module `entry` (a URL in the running form, .ts or .js). NOTE: on Node 20 a
 * `.ts` entry with `execArgv: ["--import", "tsx"]` fails (ERR_UNKNOWN_FILE_EXTENSION, tsx issue #354); an
 * eval'd bootstrap that registers tsx's loader and then imports the entry works. `execArgv: []` keeps the
 * thread from re-running the parent's `--import tsx`.
 */
export function startOwnWorker(entry: URL, options: WorkerOptions): Worker {
  const own = { ...options, execArgv: [] };
  if (!entry.pathname.endsWith(".ts")) return new Worker(entry, own);
  const tsx = JSON.stringify(import.meta.resolve("tsx/esm/api"));
  const code = `import(${tsx}).then(({ register }) => { register(); return import(${JSON.stringify(entry.href)}); });`;
  return new Worker(code, { ...own, eval: true });
}
