// Cache builds run off the calling thread. Optimising a model with onnxruntime blocks the thread that
// creates the session for as long as the optimiser runs (opt-1.3b's whole graph: 106 s), and encoding
// PISeL's self-contained stage files is protobuf work of the same size as the weights; on a server's event
// loop either would stop every other request from being answered. So each build (MiniLoader's forms,
// PISeL's stage files, ort-best's model) runs in a worker thread of its own, started for the build: the
// onnxruntime sessions it creates live there and end with it, and this thread only waits for its result.
// The thread writes into a staging directory it is given; installing it is the caller's (cache/install.ts).
import type { Worker } from "node:worker_threads";
import { startOwnWorker } from "../../util/own-entry.js";
import { CicadaError, type ErrorCode } from "../../errors.js";
import type { MiniLoaderForm, MiniLoaderOptions, OptimizedStage } from "../../cache/miniloader-entry.js";

/**
 * onnxruntime's threads for a build's session: one, not spinning. A build is background work beside a
 * server that keeps answering: the optimiser is mostly single-threaded, and kernels spinning on every
 * core (onnxruntime's default) would take the cores the event loop needs.
 */
export const BUILD_THREADS = { intraOpNumThreads: 1, allowSpinning: false } as const;

/** A build, as the thread receives it. Paths are absolute; `staging` exists and is empty. */
export type BuildJob =
  | {
      kind: "miniloader";
      bundleDir: string;
      /** The entry's key as the caller computed it: a bundle changed since is refused, not built. */
      key: string;
      options: MiniLoaderOptions;
      forms: MiniLoaderForm[];
      staging: string;
    }
  | { kind: "pisel"; bundleDir: string; contentKey: string; staging: string }
  | { kind: "ort-best"; source: string; staging: string };

/** What a MiniLoader build made, its paths in the staging directory. */
export interface MiniLoaderBuilt {
  stages?: OptimizedStage[];
  whole?: OptimizedStage;
}

/** What the build thread posts. */
export type BuildMessage =
  | { type: "progress"; done: number; total: number }
  | { type: "done"; result: MiniLoaderBuilt | null }
  | { type: "error"; error: SentError };

/** An error across the thread boundary: a CicadaError keeps its code, a system error its errno and path. */
export interface SentError {
  message: string;
  cicada?: ErrorCode;
  errno?: string;
  path?: string;
  stack?: string;
}

/** `e` as it crosses to the calling thread. */
export function sendError(e: unknown): SentError {
  if (e instanceof CicadaError) return { message: e.message, cicada: e.code };
  const err = e instanceof Error ? e : new Error(String(e));
  const { code, path } = err as NodeJS.ErrnoException;
  return {
    message: err.message,
    ...(typeof code === "string" ? { errno: code } : {}),
    ...(typeof path === "string" ? { path } : {}),
    ...(err.stack ? { stack: err.stack } : {}),
  };
}

/** The error the build thread sent, as this thread throws it (coded errors stay coded). */
function receivedError(sent: SentError): Error {
  if (sent.cicada) return new CicadaError(sent.cicada, sent.message);
  const e = new Error(sent.message) as NodeJS.ErrnoException;
  if (sent.errno) e.code = sent.errno;
  if (sent.path) e.path = sent.path;
  if (sent.stack) e.stack = sent.stack;
  return e;
}

const ENTRY = new URL(`./build-worker${import.meta.url.endsWith(".ts") ? ".ts" : ".js"}`, import.meta.url);

/** Starts a thread running `job`. */
function startThread(job: BuildJob): Worker {
  return startOwnWorker(ENTRY, { workerData: job });
}

/** Threads running now (tests: a cold start that finds its cache starts none). */
let running = 0;
/** Build threads started by this process so far. */
let started = 0;

/** How many build threads this process has started, and how many run now. */
export function buildThreads(): { started: number; running: number } {
  return { started, running };
}

/**
 * Runs `job` on a thread of its own and resolves with what it built (null for the derived forms, whose
 * files are the result) once the thread has ended; `onProgress` hears of each stage done. Rejects with the
 * build's error (coded as it was thrown), or E_RUNTIME if the thread dies without one (e.g. out of memory).
 */
export function runBuild(
  job: BuildJob,
  onProgress?: (done: number, total: number) => void,
): Promise<MiniLoaderBuilt | null> {
  return new Promise((resolve, reject) => {
    const thread = startThread(job);
    started++;
    running++;
    let outcome: { result: MiniLoaderBuilt | null } | { error: Error } | undefined;
    thread.on("message", (m: BuildMessage) => {
      if (m.type === "progress") {
        onProgress?.(m.done, m.total);
        return;
      }
      outcome ??= m.type === "done" ? { result: m.result } : { error: receivedError(m.error) };
      // Its sessions are released: the thread (and onnxruntime's memory in it) ends now.
      void thread.terminate();
    });
    thread.on("error", (e) => {
      outcome ??= { error: e };
    });
    thread.on("exit", (code) => {
      running--;
      if (outcome && "result" in outcome) resolve(outcome.result);
      else
        reject(
          outcome?.error ??
            new CicadaError(
              "E_RUNTIME",
              `the ${job.kind} build thread exited (code ${code}) before it finished`,
            ),
        );
    });
  });
}
