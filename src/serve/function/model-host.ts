// The models of one instance (one `cicada serve` process): for each, its state (UNAVAILABLE, LOADING,
// READY), its strategy, its bounded queue, and the loaded model when there is one. A request for a model
// that is not loaded starts its cold start and runs at once on it (execute-while-load); requests that
// arrive meanwhile wait in the queue and find it warm. Loads and unloads take their turn in the same queue,
// so nothing is disposed under a running request. Inference itself runs in the runtime's worker threads.
import { CicadaError } from "../../errors.js";
import { openBundle } from "../../format/bundle.js";
import type { Manifest } from "../../format/manifest.js";
import { now, type Trace } from "../../metrics/trace.js";
import type { HostTensor } from "../../runtime/host-tensor.js";
import { loadModel, prepareModel, type LoadedModel, type ModelRun } from "../../runtime/load-model.js";
import { validateInputs } from "../../runtime/model-inputs.js";
import type { Runtime } from "../../runtime/runtime.js";
import type { StrategyName } from "../../config.js";
import { RequestQueue, type Ticket } from "./request-queue.js";

/** A model's state, as the protocol's model repository extension names it. */
export type ModelState = "UNAVAILABLE" | "LOADING" | "READY";

/** Options of a {@link ModelHost}. */
export interface ModelHostOptions {
  /** The strategy of every model until a repository load overrides it. */
  strategy: StrategyName;
  /** Load the model for every request and dispose it after answering (the paper's setting). */
  stateless: boolean;
  /** Requests per model admitted besides the one running. */
  maxQueue: number;
  /** Every load's memory budget (a model that cannot fit is refused: E_MEMORY_BUDGET). */
  memoryBudgetBytes?: number;
  /** Where progress and failures are written (stderr in the CLI). */
  log?: (line: string) => void;
}

/** What `GET /v2/cicada/instance` and the repository index say of a model. */
export interface ModelInfo {
  name: string;
  state: ModelState;
  strategy: StrategyName;
  /** When the current load completed (ISO 8601), null if not loaded. */
  loadedAt: string | null;
  /** Requests admitted (running or waiting; a request still receiving its body is not admitted yet). */
  queued: number;
}

/** The result of one inference request. */
export interface HostedRun {
  outputs: Record<string, HostTensor>;
  /** The request's unit tasks; for a cold request, the loading units too. */
  trace: Trace;
  /** True if the request paid for (part of) a cold start. */
  cold: boolean;
  strategy: StrategyName;
  /** Load start to every stage ready, for a cold request; null when warm. */
  loadMs: number | null;
  /** Time the request waited for its turn in the model's queue. */
  queueMs: number;
}

interface Session {
  strategy: StrategyName;
  model: LoadedModel;
  startedAt: number;
  ready: boolean;
  loadMs?: number;
  loadedAt?: Date;
  /** Settles when every stage is loaded; rejects if one failed. */
  loaded: Promise<void>;
}

interface Entry {
  name: string;
  dir: string;
  manifest: Manifest;
  strategy: StrategyName;
  prepared: Set<StrategyName>;
  queue: RequestQueue;
  /** The session being created (prepare, manifest) or created, with its strategy. */
  pending?: { strategy: StrategyName; session: Promise<Session> };
  current?: Session;
}

function markReady(session: Session): void {
  if (session.ready) return;
  session.ready = true;
  session.loadMs = now() - session.startedAt;
  session.loadedAt = new Date();
}

/** The part of a trace from `start` on (a first run on a model loaded before the request arrived). */
function since(trace: Trace, start: number): Trace {
  return {
    requestStart: start,
    requestEnd: trace.requestEnd,
    events: trace.events.filter((e) => e.start >= start),
  };
}

/** The models of one instance. */
export class ModelHost {
  private constructor(
    private readonly runtime: Runtime,
    private readonly entries: Map<string, Entry>,
    private readonly options: ModelHostOptions,
  ) {}

  /**
   * Opens the bundles (model names must be unique) and prepares each for the strategy (MiniLoader's cache,
   * PISeL's stage files, …), so that no cold start pays for building them. Nothing is loaded yet.
   */
  static async open(
    runtime: Runtime,
    bundleDirs: readonly string[],
    options: ModelHostOptions,
  ): Promise<ModelHost> {
    const entries = new Map<string, Entry>();
    for (const dir of bundleDirs) {
      const bundle = await openBundle(dir);
      const name = bundle.manifest.model.name;
      const other = entries.get(name);
      if (other) {
        throw new CicadaError(
          "E_USAGE",
          `bundles ${other.dir} and ${dir} both hold model '${name}': served model names must be unique`,
        );
      }
      entries.set(name, {
        name,
        dir,
        manifest: bundle.manifest,
        strategy: options.strategy,
        prepared: new Set(),
        queue: new RequestQueue(options.maxQueue + 1, name),
      });
    }
    const host = new ModelHost(runtime, entries, options);
    for (const entry of entries.values()) {
      const t0 = now();
      await host.prepare(entry, options.strategy);
      options.log?.(
        `prepared ${entry.name} (${entry.dir}) for ${options.strategy} in ${(now() - t0).toFixed(0)} ms`,
      );
    }
    return host;
  }

  /** The served model names. */
  names(): string[] {
    return [...this.entries.keys()];
  }

  /** The manifest of model `name`, or E_MODEL_UNKNOWN. */
  manifest(name: string): Manifest {
    return this.entry(name).manifest;
  }

  /** Admits a request for `name` into its queue now (its body read and decoded), or E_QUEUE_FULL. */
  admit(name: string): Ticket {
    return this.entry(name).queue.admit();
  }

  /** State, strategy and load time of every model. */
  list(): ModelInfo[] {
    return [...this.entries.values()].map((e) => this.info(e));
  }

  /** One model's {@link ModelInfo}. */
  describe(name: string): ModelInfo {
    return this.info(this.entry(name));
  }

  /**
   * Runs a request admitted with `ticket`: inputs are validated first (a wrong request costs no cold
   * start), then it waits for its turn and runs, cold-starting the model if it is not loaded. The ticket
   * is released when the work has ended. `signal` abandons the request (its work, if started, goes on).
   */
  async infer(
    name: string,
    ticket: Ticket,
    feeds: Record<string, HostTensor>,
    signal?: AbortSignal,
  ): Promise<HostedRun> {
    const entry = this.entry(name);
    try {
      validateInputs(entry.manifest.inputs, feeds, `model ${name}`);
    } catch (e) {
      ticket.release();
      throw e;
    }
    const arrived = now();
    const job = async (): Promise<HostedRun> => {
      const queueMs = now() - arrived;
      const session = await (entry.pending?.session ?? this.start(entry, entry.strategy));
      const wasReady = session.ready;
      const runStart = now();
      let run: ModelRun;
      try {
        run = await session.model.run(feeds);
      } catch (e) {
        // A model that failed while loading is not kept half-built: the next request starts afresh.
        if (!session.ready) await this.discard(entry, session);
        throw e;
      }
      // Every stage ran, so every stage is loaded (even if one needed a retry inside the runtime).
      await session.loaded.catch(() => {});
      markReady(session);
      const cold = run.cold && !wasReady;
      return {
        outputs: run.outputs,
        trace: run.cold && !cold ? since(run.trace, runStart) : run.trace,
        cold,
        strategy: session.strategy,
        loadMs: cold ? (session.loadMs ?? null) : null,
        queueMs,
      };
    };
    const after = this.options.stateless ? () => this.discardCurrent(entry) : undefined;
    return entry.queue.run(ticket, job, { ...(signal ? { signal } : {}), ...(after ? { after } : {}) });
  }

  /**
   * Loads model `name` with `strategy` (default: its current one) and resolves when every stage is ready.
   * A model loaded with another strategy is disposed first, in its turn.
   */
  async load(name: string, strategy?: StrategyName): Promise<ModelInfo> {
    const entry = this.entry(name);
    const want = strategy ?? entry.strategy;
    if (entry.pending?.strategy !== want) {
      await entry.queue.exclusive(async () => {
        if (entry.pending?.strategy === want) return;
        await this.discardCurrent(entry);
        entry.strategy = want;
        this.start(entry, want).catch(() => {});
      });
    }
    const pending = entry.pending;
    if (!pending) throw new CicadaError("E_UNAVAILABLE", `model ${name} was unloaded while it loaded`);
    const session = await pending.session;
    try {
      await session.loaded;
    } catch (e) {
      if (!session.ready) await entry.queue.exclusive(() => this.discard(entry, session));
      throw e;
    }
    markReady(session);
    return this.info(entry);
  }

  /** Disposes model `name` in its turn (after the requests admitted before): nothing of it is kept. */
  async unload(name: string): Promise<ModelInfo> {
    const entry = this.entry(name);
    await entry.queue.exclusive(() => this.discardCurrent(entry));
    return this.info(entry);
  }

  /** Disposes every model, each after the requests already in its queue. */
  async close(): Promise<void> {
    await Promise.all([...this.entries.values()].map((e) => e.queue.exclusive(() => this.discardCurrent(e))));
  }

  private entry(name: string): Entry {
    const entry = this.entries.get(name);
    if (!entry) {
      throw new CicadaError(
        "E_MODEL_UNKNOWN",
        `no model named '${name}' is served here (models: ${this.names().join(", ")})`,
      );
    }
    return entry;
  }

  private info(entry: Entry): ModelInfo {
    const s = entry.current;
    const state: ModelState = !entry.pending ? "UNAVAILABLE" : s?.ready ? "READY" : "LOADING";
    return {
      name: entry.name,
      state,
      strategy: entry.pending?.strategy ?? entry.strategy,
      loadedAt: state === "READY" && s?.loadedAt ? s.loadedAt.toISOString() : null,
      queued: entry.queue.admitted,
    };
  }

  private async prepare(entry: Entry, strategy: StrategyName): Promise<void> {
    if (entry.prepared.has(strategy)) return;
    await prepareModel(this.runtime, entry.dir, strategy);
    entry.prepared.add(strategy);
  }

  /** Starts a cold start of `entry` with `strategy`; the model is LOADING from now on. */
  private start(entry: Entry, strategy: StrategyName): Promise<Session> {
    const session = (async () => {
      await this.prepare(entry, strategy);
      const startedAt = now();
      const budget = this.options.memoryBudgetBytes;
      const model = await loadModel(this.runtime, entry.dir, {
        strategy,
        ...(budget ? { memoryBudgetBytes: budget } : {}),
      });
      const s: Session = { strategy, model, startedAt, ready: false, loaded: model.loaded };
      s.loaded.then(
        () => markReady(s),
        () => {},
      );
      entry.current = s;
      return s;
    })();
    const pending = { strategy, session };
    entry.pending = pending;
    session.catch((e: unknown) => {
      if (entry.pending === pending) entry.pending = undefined;
      this.options.log?.(`model ${entry.name}: load with ${strategy} failed: ${(e as Error).message}`);
    });
    return session;
  }

  /** Disposes `session` if it is still the model's. */
  private async discard(entry: Entry, session: Session): Promise<void> {
    if (entry.current !== session) return;
    entry.current = undefined;
    entry.pending = undefined;
    await session.model.dispose().catch((e: unknown) => {
      this.options.log?.(`model ${entry.name}: dispose failed: ${(e as Error).message}`);
    });
  }

  private async discardCurrent(entry: Entry): Promise<void> {
    const pending = entry.pending;
    if (!pending) return;
    const session = await pending.session.catch(() => undefined);
    if (session) await this.discard(entry, session);
    else if (entry.pending === pending) entry.pending = undefined;
  }
}
