// The stage workers of an instance, seen from the main thread. onnxruntime's create and run block their
// thread, so the pipeline builds and runs stage i on one worker (stage-affine) while the main thread reads
// weights and schedules. The pool starts its workers when first given work (worker 0 at once unless told
// `none`: a plan that runs one session never waits for, nor shares the cores with, a thread it does not
// use), forwards requests with their buffers transferred (not copied), and keeps a dead worker from
// hanging anyone: its pending requests fail with E_RUNTIME, the owner is told, and a fresh worker takes
// its place. A request sent to a worker that is still starting waits in its port and is taken once
// onnxruntime is initialised.
import { EventEmitter } from "node:events";
import { MessageChannel, type MessagePort, type Worker } from "node:worker_threads";
import { startOwnWorker } from "../util/own-entry.js";
import { DEFAULTS } from "../config.js";
import { CicadaError } from "../errors.js";
import { RpcCalls } from "../util/rpc.js";
import type { HostTensor } from "./host-tensor.js";
import {
  WARM_UP_MODEL,
  describeRequest,
  requestTransferables,
  type CreateResult,
  type ReleaseResult,
  type ResultOf,
  type RunResult,
  type SessionSource,
  type StageSessionConfig,
  type TaskGate,
  type WorkerInit,
  type WorkerReply,
  type WorkerRequest,
  type WorkerRequestBody,
  withSessionDefaults,
} from "./worker-protocol.js";

export type { CreateResult, ReleaseResult, RunResult, SessionSource, StageSessionConfig };

/** Options of a {@link WorkerPool}. */
export interface WorkerPoolOptions {
  /** Number of stage workers (default DEFAULTS.workers). */
  workers?: number;
  /** Intra-op threads of every session, unless a create's config says otherwise (default: onnxruntime's). */
  intraOpNumThreads?: number;
  /**
   * `lazy` (default): worker 0 starts at once, every other worker when it is first sent a request or
   * {@link WorkerPool.ready} is called. `eager`: all start at once. `none`: every worker starts when it
   * is first needed (a runtime whose first load may need none).
   */
  start?: "none" | "lazy" | "eager";
}

/** What the owner learns when a worker dies: its sessions are gone and must be rebuilt. */
export interface WorkerDeath {
  worker: number;
  name: string;
  reason: string;
  /** The requests that were pending on it, all rejected with E_RUNTIME. */
  failedRequests: string[];
  /** Keys of the sessions it held. */
  lostSessions: string[];
}

/** The pool's events: a worker died (and was replaced), a worker became ready. */
export interface WorkerPoolEvents {
  "worker-died": [WorkerDeath];
  "worker-ready": [{ worker: number; name: string; ortVersion: string }];
}

/** Per-request options. */
export interface RequestOptions {
  /** Test-only: hold the task at its start (see {@link TaskGate}). */
  gate?: TaskGate;
}

/** How long {@link WorkerPool.close} lets work already in the workers finish. */
const CLOSE_GRACE_MS = 30_000;

/** What the pool keeps with each request in flight: the request (for errors and sessions) and its gate. */
interface CallMeta {
  request: WorkerRequestBody;
  gate?: TaskGate;
}

interface Slot {
  index: number;
  name: string;
  worker: Worker;
  port: MessagePort;
  calls: RpcCalls<CallMeta>;
  sessions: Set<string>;
  ready: Promise<void>;
  markReady: () => void;
  failStart: (error: Error) => void;
  isReady: boolean;
  /** Set once the thread has exited. */
  exited: boolean;
  lastError?: Error;
  killed: boolean;
}

const ENTRY = new URL(`./stage-worker${import.meta.url.endsWith(".ts") ? ".ts" : ".js"}`, import.meta.url);

/** Starts a stage worker thread. */
function startThread(init: WorkerInit): Worker {
  return startOwnWorker(ENTRY, { workerData: init, transferList: [init.port] });
}

/**
 * N stage-affine workers, each with its own onnxruntime sessions (named by keys the caller chooses) and its
 * own task queue in which execution goes first. Every result carries the task's start and end, measured in
 * the worker on the clock of src/metrics/trace.ts.
 */
export class WorkerPool extends EventEmitter<WorkerPoolEvents> {
  /** One entry per worker; undefined until the worker is started. */
  private readonly slots: (Slot | undefined)[];
  private readonly intraOpNumThreads: number | undefined;
  private closed = false;

  /**
   * Starts worker 0 (all workers with `start: "eager"`) and returns without waiting for it; requests may
   * be sent at once. {@link ready} says when every worker can take requests.
   */
  constructor(options: WorkerPoolOptions = {}) {
    super();
    const count = options.workers ?? DEFAULTS.workers;
    if (!Number.isInteger(count) || count < 1) {
      throw new CicadaError("E_USAGE", `a worker pool needs at least 1 worker, found ${count}`);
    }
    this.intraOpNumThreads = options.intraOpNumThreads;
    this.slots = new Array<Slot | undefined>(count).fill(undefined);
    const eager = options.start === "eager" ? count : options.start === "none" ? 0 : 1;
    for (let i = 0; i < eager; i++) this.slots[i] = this.spawn(i);
  }

  /** Number of workers (started or not). */
  get size(): number {
    return this.slots.length;
  }

  /** Number of workers started so far (a lazy pool starts the others on first use). */
  get started(): number {
    return this.slots.filter((s) => s !== undefined).length;
  }

  /** The name of worker `worker` in errors and trace events ("worker-0"). */
  workerName(worker: number): string {
    return `worker-${worker}`;
  }

  /**
   * Starts the workers not started yet and resolves once every worker has imported and initialised
   * onnxruntime; rejects with E_RUNTIME if one failed to start.
   */
  ready(): Promise<void> {
    if (this.closed) return Promise.reject(new CicadaError("E_RUNTIME", "the worker pool is closed"));
    return Promise.all(this.slots.map((_, i) => this.slot(i).ready)).then(() => undefined);
  }

  /** Keys of the sessions alive on `worker`, as far as completed requests tell. */
  sessionsOf(worker: number): string[] {
    this.checkIndex(worker);
    return [...(this.slots[worker]?.sessions ?? [])];
  }

  /**
   * Builds a session on `worker` under `key`. Bytes and in-memory external data are transferred: the
   * caller's buffers are detached afterwards. Sessions default to no spinning and the pool's intra-op
   * threads; `config` overrides both.
   */
  create(
    worker: number,
    key: string,
    source: SessionSource,
    config: StageSessionConfig = {},
    options: RequestOptions = {},
  ): Promise<CreateResult> {
    const full = withSessionDefaults(config, this.intraOpNumThreads);
    return this.send(worker, { kind: "create", key, source, config: full }, options);
  }

  /** Runs session `key` on `worker`. The feeds' buffers are transferred (detached here). */
  run(
    worker: number,
    key: string,
    feeds: Record<string, HostTensor>,
    outputNames?: string[],
    options: RequestOptions = {},
  ): Promise<RunResult> {
    return this.send(worker, { kind: "run", key, feeds, ...(outputNames ? { outputNames } : {}) }, options);
  }

  /** Releases session `key` on `worker`. */
  release(worker: number, key: string): Promise<ReleaseResult> {
    return this.send(worker, { kind: "release", key }, {});
  }

  /** Releases every session of every worker; one result per worker (an unstarted one has none). */
  releaseAll(): Promise<ReleaseResult[]> {
    return Promise.all(
      this.slots.map((s, i) =>
        s ? this.send(i, { kind: "releaseAll" }, {}) : Promise.resolve({ released: [], start: 0, end: 0 }),
      ),
    );
  }

  /**
   * Terminates `worker` from the main thread (e.g. a stuck create). Like any death: its pending requests
   * fail, "worker-died" is emitted and a fresh worker replaces it. Resolves once the thread has exited.
   */
  async kill(worker: number): Promise<void> {
    this.checkIndex(worker);
    const slot = this.slots[worker];
    if (!slot) return; // not started: nothing to terminate
    slot.killed = true;
    await slot.worker.terminate();
  }

  /**
   * Terminates every worker once the work already in it has finished (at most {@link CLOSE_GRACE_MS});
   * requests still pending then fail with E_RUNTIME. NOTE: a worker terminated inside a native onnxruntime
   * call (a session being created or run, or its warm-up) aborts the whole process ("terminate called
   * after throwing an instance of 'Napi::Error'", exit 134): e.g. PISeL's next stage still being built
   * when a failed request closes the runtime.
   */
  async close(): Promise<void> {
    this.closed = true;
    const deadline = Date.now() + CLOSE_GRACE_MS;
    // Tasks held at a test gate never finish by themselves: they do not count.
    const busy = () =>
      this.slots.some(
        (s) =>
          s !== undefined &&
          !s.exited &&
          (!s.isReady || s.calls.waiting().some((c) => c.meta.gate === undefined)),
      );
    while (busy() && Date.now() < deadline) await new Promise((r) => setTimeout(r, 5));
    await Promise.all(this.slots.map((s) => (s ? s.worker.terminate() : Promise.resolve(0))));
  }

  private checkIndex(worker: number): void {
    if (!Number.isInteger(worker) || worker < 0 || worker >= this.slots.length) {
      throw new CicadaError(
        "E_USAGE",
        `no worker ${worker}: the pool has workers 0..${this.slots.length - 1}`,
      );
    }
  }

  /** Worker `worker`'s slot, starting the worker if it has not been. */
  private slot(worker: number): Slot {
    this.checkIndex(worker);
    return (this.slots[worker] ??= this.spawn(worker));
  }

  private spawn(index: number): Slot {
    const name = this.workerName(index);
    const { port1, port2 } = new MessageChannel();
    let markReady: () => void = () => undefined;
    let failStart: (error: Error) => void = () => undefined;
    const ready = new Promise<void>((resolve, reject) => {
      markReady = resolve;
      failStart = reject;
    });
    // Nobody may be awaiting ready() when a worker fails to start; the failure also rejects its requests.
    ready.catch(() => undefined);
    const slot: Slot = {
      index,
      name,
      worker: startThread({ name, port: port2, warmUpModel: Uint8Array.from(WARM_UP_MODEL) }),
      port: port1,
      calls: new RpcCalls<CallMeta>(),
      sessions: new Set(),
      ready,
      markReady,
      failStart,
      isReady: false,
      exited: false,
      killed: false,
    };
    port1.on("message", (reply: WorkerReply) => this.onReply(slot, reply));
    slot.worker.on("error", (error) => {
      slot.lastError = error;
    });
    slot.worker.on("exit", (code) => this.onExit(slot, code));
    return slot;
  }

  /** Sends a request to `worker` (starting it if need be); its buffers are transferred. */
  private async send<K extends WorkerRequest["kind"]>(
    worker: number,
    body: Omit<Extract<WorkerRequest, { kind: K }>, "id"> & { kind: K },
    options: RequestOptions,
  ): Promise<ResultOf[K]> {
    const request = (options.gate ? { ...body, gate: options.gate.cell } : body) as WorkerRequestBody;
    const name = this.workerName(worker);
    this.checkIndex(worker);
    // A closed pool starts no worker; a worker that could not start is not started again.
    const slot = this.closed ? undefined : this.slot(worker);
    if (!slot || slot.exited) {
      const why = slot ? `${name} failed to start` : "the pool is closed";
      throw new CicadaError("E_RUNTIME", `${name}: cannot ${describeRequest(request)}: ${why}`);
    }
    const port = slot.port;
    return slot.calls.call<ResultOf[K]>({ request, gate: options.gate }, (id) => {
      const message = { ...request, id };
      try {
        port.postMessage(message, requestTransferables(message));
      } catch {
        // NOTE: Node's pooled small Buffers cannot be transferred (an error from Node 21 on): copy those.
        port.postMessage(message);
      }
    });
  }

  private onReply(slot: Slot, reply: WorkerReply): void {
    switch (reply.kind) {
      case "ready":
        slot.isReady = true;
        slot.markReady();
        this.emit("worker-ready", { worker: slot.index, name: slot.name, ortVersion: reply.ortVersion });
        return;
      case "started":
        slot.calls.peek(reply.id)?.meta.gate?.settle();
        return;
      case "done": {
        const call = slot.calls.take(reply.id);
        if (!call) return;
        const { request } = call.meta;
        if (request.kind === "create") slot.sessions.add(request.key);
        if (request.kind === "release" || request.kind === "releaseAll") {
          for (const key of (reply.result as ReleaseResult).released) slot.sessions.delete(key);
        }
        call.resolve(reply.result);
        return;
      }
      case "failed": {
        const call = slot.calls.take(reply.id);
        if (!call) return;
        const error = new CicadaError(
          reply.code,
          `${slot.name}: ${describeRequest(call.meta.request)}: ${reply.message}`,
        );
        call.meta.gate?.settle(error);
        call.reject(error);
        return;
      }
    }
  }

  private onExit(slot: Slot, code: number): void {
    slot.exited = true;
    slot.port.close();
    const reason = this.closed
      ? "the pool was closed"
      : slot.killed
        ? "terminated by kill()"
        : slot.lastError
          ? `uncaught exception: ${slot.lastError.message}`
          : `exit code ${code}`;
    const failed = slot.calls.failAll(({ meta }) => {
      const what = describeRequest(meta.request);
      const error = new CicadaError("E_RUNTIME", `${slot.name} died (${reason}) before ${what} finished`);
      meta.gate?.settle(error);
      return error;
    });
    const failedRequests = failed.map((call) => describeRequest(call.meta.request));
    if (!slot.isReady) {
      slot.failStart(new CicadaError("E_RUNTIME", `${slot.name} failed to start: ${reason}`));
      // A worker that cannot start would fail again: no replacement, its requests fail at once.
      return;
    }
    if (this.closed) return;
    // Replace first, so that an owner reacting to the event rebuilds its sessions on the new worker.
    this.slots[slot.index] = this.spawn(slot.index);
    this.emit("worker-died", {
      worker: slot.index,
      name: slot.name,
      reason,
      failedRequests,
      lostSessions: [...slot.sessions],
    });
  }
}
