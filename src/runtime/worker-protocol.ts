// The messages between the worker pool (main thread) and a stage worker, in one place so both ends agree.
// Requests carry an id chosen by the pool (src/util/rpc.ts correlates them); every reply names that id.
// Every message must survive the structured clone: plain objects, typed arrays, SharedArrayBuffers; no
// classes, no functions. Also here: what a worker is given at spawn (the warm-up model among it) and the
// test gate, whose shared cell both ends read (TaskGate is its main-thread half).
import type { MessagePort } from "node:worker_threads";
import type { SessionConfig } from "./ort-adapter.js";
import type { HostTensor } from "./host-tensor.js";
import type { ErrorCode } from "../errors.js";

/** Where a session's model comes from: a file (weights mapped by onnxruntime) or bytes in memory. */
export type SessionSource =
  | { path: string }
  | {
      bytes: Uint8Array;
      /** External-data files as in-memory buffers, under the path the model names them by. */
      externalData?: { path: string; data: Uint8Array }[];
    };

/** Session options a stage worker accepts: in-memory external data travels in the source instead. */
export type StageSessionConfig = Omit<SessionConfig, "externalData">;

/**
 * A session's options with the runtime's defaults under them: no spinning intra-op threads, and the
 * runtime's intra-op thread count; `config` overrides both (worker pool and inline sessions alike).
 */
export function withSessionDefaults(
  config: StageSessionConfig,
  intraOpNumThreads: number | undefined,
): StageSessionConfig {
  const defaults: StageSessionConfig = { allowSpinning: false };
  if (intraOpNumThreads !== undefined) defaults.intraOpNumThreads = intraOpNumThreads;
  return { ...defaults, ...config };
}

/** Start and end of a task, on the shared clock of src/metrics/trace.ts, measured in the worker. */
export interface TaskTiming {
  start: number;
  end: number;
}

/**
 * Test-only: what a gated task does once the main thread opens its gate. `proceed` runs it; `exit` ends the
 * worker with process.exit; `throw` raises an uncaught exception in the worker.
 */
export type GateAction = "proceed" | "exit" | "throw";

/** Gate cell values: 0 is closed; the others are the action, in this order. */
export const GATE_ACTIONS: readonly GateAction[] = ["proceed", "exit", "throw"];

/** Exit code of a worker told to exit by a gate. */
export const GATE_EXIT_CODE = 7;

/**
 * Test-only debug hook: holds a create or run at its start, on the worker's thread, until {@link open}.
 * The worker is then blocked as if onnxruntime were busy, so tests can queue requests behind a running
 * task or kill a worker in the middle of a request, without timing anything.
 */
export class TaskGate {
  /** The shared cell the worker waits on. */
  readonly cell = new Int32Array(new SharedArrayBuffer(4));
  /** Resolves when the worker has picked the task and waits at the gate. */
  readonly started: Promise<void>;
  /** @internal Settles {@link started}; called by the pool. */
  readonly settle: (error?: Error) => void;

  constructor() {
    let settle: (error?: Error) => void = () => undefined;
    this.started = new Promise<void>((resolve, reject) => {
      settle = (error) => (error ? reject(error) : resolve());
    });
    // A gate whose task failed before it started must not raise an unhandled rejection.
    this.started.catch(() => undefined);
    this.settle = settle;
  }

  /** Lets the task proceed, or makes the worker exit (`exit`) or throw an uncaught exception (`throw`). */
  open(action: GateAction = "proceed"): void {
    Atomics.store(this.cell, 0, GATE_ACTIONS.indexOf(action) + 1);
    Atomics.notify(this.cell, 0);
  }
}

interface RequestBase {
  id: number;
  /**
   * Test-only: an Int32Array over a SharedArrayBuffer. When the worker picks the task it posts `started` and
   * blocks until the cell is non-zero, then acts on it (1 + index in GATE_ACTIONS).
   */
  gate?: Int32Array;
}

export interface CreateRequest extends RequestBase {
  kind: "create";
  key: string;
  source: SessionSource;
  config: StageSessionConfig;
}

export interface RunRequest extends RequestBase {
  kind: "run";
  key: string;
  feeds: Record<string, HostTensor>;
  outputNames?: string[];
}

export interface ReleaseRequest extends RequestBase {
  kind: "release";
  key: string;
}

export interface ReleaseAllRequest extends RequestBase {
  kind: "releaseAll";
}

/** A message from the pool to a worker. */
export type WorkerRequest = CreateRequest | RunRequest | ReleaseRequest | ReleaseAllRequest;

/** A request before the pool has given it its id (what the pool keeps to describe it). */
export type WorkerRequestBody = WorkerRequest extends infer R
  ? R extends WorkerRequest
    ? Omit<R, "id">
    : never
  : never;

export interface CreateResult extends TaskTiming {
  inputNames: string[];
  outputNames: string[];
}

export interface RunResult extends TaskTiming {
  outputs: Record<string, HostTensor>;
}

export interface ReleaseResult extends TaskTiming {
  /** Keys of the sessions released. */
  released: string[];
}

/** The result type of each request kind. */
export interface ResultOf {
  create: CreateResult;
  run: RunResult;
  release: ReleaseResult;
  releaseAll: ReleaseResult;
}

/** A message from a worker to the pool. */
export type WorkerReply =
  /** onnxruntime is imported and initialised: the worker takes requests. */
  | { kind: "ready"; ortVersion: string }
  /** A gated task was picked and now waits for its gate. */
  | { kind: "started"; id: number }
  | { kind: "done"; id: number; result: ResultOf[keyof ResultOf] }
  | { kind: "failed"; id: number; code: ErrorCode; message: string };

/**
 * The model of WorkerInit.warmUpModel, y = Identity(x) with x and y float32 [1] (IR 8, opset 17), as
 * onnx-io's encodeModel writes it (test/runtime/worker-pool.test.ts checks that it still does). Written out
 * so that starting a runtime does not load the protobuf schema for 69 bytes. The worker's warm-up session
 * initialises onnxruntime (its environment, ~15-20 ms) while the thread starts, not in a request.
 */
export const WARM_UP_MODEL: readonly number[] = [
  8, 8, 58, 61, 10, 16, 10, 1, 120, 18, 1, 121, 34, 8, 73, 100, 101, 110, 116, 105, 116, 121, 18, 7, 119, 97,
  114, 109, 45, 117, 112, 90, 15, 10, 1, 120, 18, 10, 10, 8, 8, 1, 18, 4, 10, 2, 8, 1, 98, 15, 10, 1, 121, 18,
  10, 10, 8, 8, 1, 18, 4, 10, 2, 8, 1, 66, 2, 16, 17,
];

/** The data given to a worker at spawn. */
export interface WorkerInit {
  /** Name used in errors and trace events ("worker-0"). */
  name: string;
  /** The worker's end of its request channel. */
  port: MessagePort;
  /**
   * A trivial model (Identity of a float32 [1] tensor "x" to "y") the worker creates and runs once before it
   * reports ready, so that onnxruntime's one-time setup happens at instance start. Built by the pool, which
   * spares every worker the protobuf library.
   */
  warmUpModel: Uint8Array;
}

/**
 * The ArrayBuffers behind `views`, each once, that may be moved to another thread: shared memory is
 * skipped (it is never transferred) and so are views of the same buffer listed twice.
 */
export function transferablesOf(views: readonly ArrayBufferView[]): ArrayBuffer[] {
  const out = new Set<ArrayBuffer>();
  for (const v of views) {
    if (v.buffer instanceof ArrayBuffer && v.buffer.byteLength > 0) out.add(v.buffer);
  }
  return [...out];
}

/** The buffers of a request that the pool hands over to the worker. */
export function requestTransferables(request: WorkerRequestBody): ArrayBuffer[] {
  switch (request.kind) {
    case "create":
      return "bytes" in request.source
        ? transferablesOf([request.source.bytes, ...(request.source.externalData ?? []).map((e) => e.data)])
        : [];
    case "run":
      return transferablesOf(Object.values(request.feeds).map((t) => t.data));
    default:
      return [];
  }
}

/** A short description of a request for error messages: "run 'stage-3'". */
export function describeRequest(request: WorkerRequestBody): string {
  return request.kind === "releaseAll" ? "releaseAll" : `${request.kind} '${request.key}'`;
}

/**
 * The index in `queue` (arrival order) of the task a worker does next, or -1 when it is empty. Execution
 * first: the oldest run goes ahead of constructions and releases, except that no task overtakes an earlier
 * one on the same session key (a run waits for the create of its own session) nor a releaseAll.
 */
export function nextTaskIndex(queue: readonly WorkerRequest[]): number {
  if (queue.length === 0) return -1;
  const held = new Set<string>();
  for (const [i, request] of queue.entries()) {
    if (request.kind === "releaseAll") break;
    if (request.kind === "run" && !held.has(request.key)) return i;
    held.add(request.key);
  }
  return 0;
}
