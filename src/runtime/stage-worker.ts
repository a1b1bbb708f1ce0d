// Entry of a stage worker: a thread that builds and runs onnxruntime sessions for the pool in
// worker-pool.ts. onnxruntime's create and run block the calling thread and a session cannot move between
// threads, so each stage is built and run on one of these while the main thread does I/O and scheduling.
// The worker keeps its own queue and, whenever it picks the next task, prefers execution (see
// nextTaskIndex): a run waiting behind a construction goes first.
import { receiveMessageOnPort, workerData } from "node:worker_threads";
import { CicadaError, isCicadaError } from "../errors.js";
import { now } from "../metrics/trace.js";
import {
  ORT_VERSION,
  createSession,
  createSessionFrom,
  releaseSession,
  runSession,
  type Session,
} from "./ort-adapter.js";
import {
  GATE_ACTIONS,
  GATE_EXIT_CODE,
  nextTaskIndex,
  transferablesOf,
  type ResultOf,
  type WorkerInit,
  type WorkerReply,
  type WorkerRequest,
} from "./worker-protocol.js";

const { name, port, warmUpModel } = workerData as WorkerInit;
const sessions = new Map<string, Session>();
const queue: WorkerRequest[] = [];
let busy = false;
let scheduled = false;

function post(reply: WorkerReply, transfer: ArrayBuffer[] = []): void {
  try {
    port.postMessage(reply, transfer);
  } catch {
    // NOTE: buffers onnxruntime or Node mark untransferable cannot move; send a copy instead.
    port.postMessage(reply);
  }
}

function sessionOf(key: string): Session {
  const session = sessions.get(key);
  if (!session) {
    const known = [...sessions.keys()].map((k) => `'${k}'`).join(", ") || "none";
    throw new CicadaError("E_USAGE", `${name} has no session '${key}' (its sessions: ${known})`);
  }
  return session;
}

async function releaseKeys(keys: string[]): Promise<string[]> {
  for (const key of keys) {
    const session = sessionOf(key);
    sessions.delete(key);
    await releaseSession(session);
  }
  return keys;
}

/** Does one task; returns its result and the buffers to move back to the main thread. */
async function perform(
  request: WorkerRequest,
): Promise<{ result: ResultOf[keyof ResultOf]; transfer: ArrayBuffer[] }> {
  switch (request.kind) {
    case "create": {
      if (sessions.has(request.key)) {
        throw new CicadaError("E_USAGE", `${name} has a session '${request.key}' already; release it first`);
      }
      const { source, config } = request;
      const start = now();
      const session = await createSessionFrom(source, config);
      const end = now();
      sessions.set(request.key, session);
      const result = {
        inputNames: [...session.inputNames],
        outputNames: [...session.outputNames],
        start,
        end,
      };
      return { result, transfer: [] };
    }
    case "run": {
      const session = sessionOf(request.key);
      const start = now();
      const outputs = await runSession(session, request.feeds, request.outputNames);
      const end = now();
      return {
        result: { outputs, start, end },
        transfer: transferablesOf(Object.values(outputs).map((t) => t.data)),
      };
    }
    case "release": {
      const start = now();
      const released = await releaseKeys([request.key]);
      return { result: { released, start, end: now() }, transfer: [] };
    }
    case "releaseAll": {
      const start = now();
      const released = await releaseKeys([...sessions.keys()]);
      return { result: { released, start, end: now() }, transfer: [] };
    }
  }
}

async function serve(request: WorkerRequest): Promise<void> {
  try {
    const { result, transfer } = await perform(request);
    post({ kind: "done", id: request.id, result }, transfer);
  } catch (e) {
    const code = isCicadaError(e) ? e.code : "E_RUNTIME";
    post({ kind: "failed", id: request.id, code, message: e instanceof Error ? e.message : String(e) });
  }
}

/**
 * Test-only: announces a gated task and blocks this thread until the main thread opens the gate. Returns
 * false when the gate says the worker must go down instead.
 */
function passGate(request: WorkerRequest, gate: Int32Array): boolean {
  post({ kind: "started", id: request.id });
  Atomics.wait(gate, 0, 0);
  const action = GATE_ACTIONS[Atomics.load(gate, 0) - 1];
  if (action === "exit") process.exit(GATE_EXIT_CODE);
  if (action === "throw") {
    setImmediate(() => {
      throw new Error(`${name}: uncaught exception raised by the test gate of request ${request.id}`);
    });
    return false;
  }
  return true;
}

/** Moves every request that arrived while the thread was blocked into the queue, without yielding. */
function drainPort(): void {
  for (let m = receiveMessageOnPort(port); m; m = receiveMessageOnPort(port)) {
    queue.push(m.message as WorkerRequest);
  }
}

async function pump(): Promise<void> {
  scheduled = false;
  if (busy) return;
  busy = true;
  for (;;) {
    // NOTE: requests sent while create/run blocked this thread may still sit in the port (whether their
    // events fired depends on onnxruntime's promise chain); take them all before choosing, so that a
    // run is never left behind creates only because it was not seen yet.
    drainPort();
    const index = nextTaskIndex(queue);
    if (index < 0) break;
    const request = queue.splice(index, 1)[0]!;
    // A worker going down stays busy: nothing else may start before the exception ends the thread.
    if (request.gate && !passGate(request, request.gate)) return;
    await serve(request);
  }
  busy = false;
}

function schedule(): void {
  if (busy || scheduled) return;
  scheduled = true;
  setImmediate(() => void pump());
}

/** Creates and runs one trivial session, so that onnxruntime's one-time setup is not paid by a request. */
async function initializeOnnxRuntime(model: Uint8Array): Promise<void> {
  const session = await createSession(model, { allowSpinning: false, intraOpNumThreads: 1 });
  await runSession(session, { x: { dtype: "float32", dims: [1], data: new Float32Array(1) } });
  await releaseSession(session);
}

await initializeOnnxRuntime(warmUpModel);
port.on("message", (request: WorkerRequest) => {
  queue.push(request);
  schedule();
});
post({ kind: "ready", ortVersion: ORT_VERSION });
