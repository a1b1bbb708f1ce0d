// Sessions on the calling thread: the executor of a load with nothing to overlap on this thread. A stage
// worker costs a fresh process its thread, a second module graph and onnxruntime's setup before the first
// create (~50-70 ms on 2 cores, more than the create itself for ResNet-50); a single-session load whose
// weights need no verification (cicada's whole plan on a prepared, verified cache entry) gains nothing from
// it: onnxruntime-node's create and run block whichever JS thread calls them, and execution faults the
// mapped weights in with the kernel's readahead. Same calls as WorkerPool, so a loaded model uses either.
import { CicadaError } from "../errors.js";
import { now } from "../metrics/trace.js";
import type { HostTensor } from "./host-tensor.js";
import type { Session } from "./ort-adapter.js";
import {
  withSessionDefaults,
  type CreateResult,
  type ReleaseResult,
  type RunResult,
  type SessionSource,
  type StageSessionConfig,
} from "./worker-protocol.js";

/** Sessions created and run on the main thread (onnxruntime-node is imported on first use). */
export class InlineSessions {
  private readonly sessions = new Map<string, Session>();

  constructor(private readonly intraOpNumThreads: number | undefined) {}

  /** The name of the executor in trace events. */
  workerName(): string {
    return "main";
  }

  /** Builds session `key` (sessions default to no spinning and the runtime's intra-op threads). */
  async create(
    _worker: number,
    key: string,
    source: SessionSource,
    config: StageSessionConfig = {},
  ): Promise<CreateResult> {
    const { createSessionFrom } = await import("./ort-adapter.js");
    if (this.sessions.has(key)) throw new CicadaError("E_USAGE", `main has a session '${key}' already`);
    const start = now();
    const session = await createSessionFrom(source, withSessionDefaults(config, this.intraOpNumThreads));
    const end = now();
    this.sessions.set(key, session);
    return { inputNames: [...session.inputNames], outputNames: [...session.outputNames], start, end };
  }

  /** Runs session `key`. */
  async run(_worker: number, key: string, feeds: Record<string, HostTensor>): Promise<RunResult> {
    const { runSession } = await import("./ort-adapter.js");
    const start = now();
    const outputs = await runSession(this.sessionOf(key), feeds);
    return { outputs, start, end: now() };
  }

  /** Releases session `key`. */
  async release(_worker: number, key: string): Promise<ReleaseResult> {
    const { releaseSession } = await import("./ort-adapter.js");
    const start = now();
    const session = this.sessionOf(key);
    this.sessions.delete(key);
    await releaseSession(session);
    return { released: [key], start, end: now() };
  }

  private sessionOf(key: string): Session {
    const session = this.sessions.get(key);
    if (!session) throw new CicadaError("E_USAGE", `main has no session '${key}'`);
    return session;
  }
}
