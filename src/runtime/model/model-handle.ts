// The loaded model: its stage slots, the execution loop and disposal, the same for every strategy. A
// loader (runtime/loaders/) makes the stages' sessions; this file runs them: E_i after stage i is ready
// and E_{i-1} is done (the pipeline rule), every unit task recorded on one clock, and a request's outputs
// returned only when the loader says the weights they were computed from are verified.
import { DEFAULTS } from "../../config.js";
import { randomBytes } from "node:crypto";
import { CicadaError } from "../../errors.js";
import type { Bundle } from "../../format/bundle.js";
import type { Manifest } from "../../format/manifest.js";
import { storageReadBytes } from "../../metrics/proc-io.js";
import { now, type Trace, type TraceEvent } from "../../metrics/trace.js";
import type { HostTensor } from "../host-tensor.js";
import type { Loader } from "../loaders/loader.js";
import type { MemoryMode } from "../memory-budget.js";
import { validateInputs } from "../model-inputs.js";
import type { Runtime } from "../runtime.js";
import { Activations } from "./activations.js";
import type { LoadOptions, LoadedModel, ModelRun, PlanName, RunOptions } from "./model-api.js";
import type { StageSessions } from "./stage-sessions.js";
import { createSlots, transition, type StageSlot } from "./stage-slot.js";

/** When and how a load was planned: its span (recorded as L of stage 0) and the cache build it deferred. */
export interface Planning {
  start: number;
  end: number;
  /** Builds MiniLoader's cache after the first answer (the load went without it). */
  build?: () => Promise<void>;
}

export class ModelHandle implements LoadedModel {
  readonly manifest: Manifest;
  readonly strategy: LoadOptions["strategy"];
  loaded: Promise<void> = Promise.resolve();
  private readonly slots: StageSlot[];
  private loadStart = now();
  /** The process's storage reads when the load started (a cold request counts its reads from there). */
  private loadRead: number | undefined;
  private buildStarted = false;
  private loader!: Loader;
  /** Load, run, free: no stage outlives its execution (see start). */
  private streaming = false;
  /** A streaming model's requests, one after another (each one loads and frees every stage). */
  private turn: Promise<unknown> = Promise.resolve();
  private readonly onWorkerDied = (death: { worker: number }) => {
    for (const s of this.slots)
      if (s.worker === death.worker && s.state === "ready") transition(s, "unloaded");
  };

  constructor(
    private readonly runtime: Runtime,
    private readonly bundle: Bundle,
    private readonly options: LoadOptions,
    readonly plan: PlanName,
    private readonly sessions: StageSessions,
    private readonly planning?: Planning,
  ) {
    this.manifest = bundle.manifest;
    this.strategy = options.strategy;
    const count = plan === "pipeline" ? bundle.manifest.stages.length : 1;
    this.slots = createSlots(randomBytes(4).toString("hex"), count, runtime.pool.size);
    runtime.pool.on("worker-died", this.onWorkerDied);
  }

  /**
   * Starts the cold start with `loader`: every stage's loading is under way when this returns. A
   * `streaming` model (memory-budget.ts) loads nothing ahead: each request loads a stage just before its
   * execution and releases it after, one request at a time.
   */
  start(loader: Loader, memory: MemoryMode = "resident"): void {
    this.loader = loader;
    this.loadStart = this.planning?.start ?? now();
    this.loadRead = storageReadBytes();
    if (this.planning) this.sessions.record("L", 0, "main", this.planning.start, this.planning.end);
    this.streaming = memory === "streaming";
    if (this.streaming) return;
    for (const s of this.slots) transition(s, "loading");
    const loads = loader.start(this.slots);
    this.slots.forEach((slot, i) => {
      slot.ready = loads[i]!.then(
        () => transition(slot, "ready"),
        (e: unknown) => {
          if (slot.state === "loading") transition(slot, "failed");
          throw e;
        },
      );
      // Failures surface through run(); this keeps an unobserved failure from crashing the process.
      slot.ready.catch(() => {});
    });
    this.loaded = Promise.all(this.slots.map((s) => s.ready)).then(() => undefined);
    this.loaded.catch(() => {});
  }

  /** Reloads one stage outside the pipeline (after a failure or a worker's death). */
  private async reloadStage(slot: StageSlot): Promise<void> {
    transition(slot, "loading");
    try {
      await this.loader.reload(slot);
      transition(slot, "ready");
    } catch (e) {
      transition(slot, "failed");
      throw e;
    }
  }

  private async stageReady(slot: StageSlot): Promise<void> {
    if (slot.state === "released") throw new CicadaError("E_USAGE", "the model was disposed");
    if (slot.state === "unloaded" || slot.state === "failed") await this.repair(slot);
    await slot.ready.catch(async (e: unknown) => {
      if (!this.loader.rebuilds(e)) throw e;
      // Concurrent requests share one repair: the first one to get here starts it.
      if (slot.state === "failed") await this.repair(slot);
      else await slot.ready;
    });
  }

  /** Reloads a stage that failed or was unloaded; a repaired model is loaded again. */
  private async repair(slot: StageSlot): Promise<void> {
    slot.ready = this.reloadStage(slot);
    await slot.ready;
    if (this.slots.every((s) => s.state === "ready")) this.loaded = Promise.resolve();
  }

  /** Drops a ready slot's session, so that the next request loads it again. */
  private async unload(slot: StageSlot): Promise<void> {
    if (slot.state !== "ready") return;
    transition(slot, "unloaded");
    await this.sessions.release(slot).catch(() => {});
  }

  async run(feeds: Record<string, HostTensor>, options: RunOptions = {}): Promise<ModelRun> {
    validateInputs(this.manifest.inputs, feeds, this.bundle.dir);
    if (!this.streaming) return this.runChecked(feeds, options);
    const mine = this.turn.then(() => this.runChecked(feeds, options));
    this.turn = mine.catch(() => {});
    return mine;
  }

  /** One request, run again on reloaded stages if a file under a session changed meanwhile. */
  private async runChecked(feeds: Record<string, HostTensor>, options: RunOptions): Promise<ModelRun> {
    const result = await this.runOnce(feeds, options);
    // The cache this load went without is built once the first answer is out (see choosePlan).
    const build = this.planning?.build;
    if (build && !this.buildStarted) {
      this.buildStarted = true;
      this.runtime.background(build);
    }
    // A cache file rewritten under a mapping (in place, or replaced) may have changed what the sessions
    // computed from: those sessions are dropped, and the request runs again on stages loaded anew (which
    // verifies the files again). Nothing computed from unverified bytes is returned.
    const changed = this.sessions.changed(this.slots);
    if (changed.length === 0) return result;
    for (const slot of changed) await this.unload(slot);
    const again = await this.runOnce(feeds, options);
    if (this.sessions.changed(this.slots).length > 0) {
      throw new CicadaError(
        "E_BUNDLE_CHECKSUM",
        `${this.bundle.dir}: cache files of this model keep changing while it runs; no output is returned`,
      );
    }
    return { ...again, cold: true };
  }

  private async runOnce(feeds: Record<string, HostTensor>, options: RunOptions): Promise<ModelRun> {
    const requestStart = now();
    const requestRead = storageReadBytes();
    // Cold: the request waits for (part of) a load; its trace then holds the load's units.
    const cold = this.slots.some((s) => s.state !== "ready");
    // Each request has its own trace, so that concurrent requests on one handle do not mix theirs.
    const events: TraceEvent[] = [];
    const stageInputs =
      this.plan === "pipeline"
        ? this.manifest.stages.map((s) => s.inputs.map((i) => i.name))
        : [this.manifest.inputs.map((i) => i.name)];
    const activations = new Activations(stageInputs, feeds, this.bundle.dir);
    const outputNames = new Set(this.manifest.outputs.map((o) => o.name));
    const outputs: Record<string, HostTensor> = {};
    const stageOutputs: Record<string, HostTensor> | undefined = options.stageOutputs ? {} : undefined;
    const { executor } = this.sessions;
    for (const slot of this.slots) {
      await this.stageReady(slot);
      // Feeds are transferred to the worker: copies of what is read again, or kept when asked.
      const stageFeeds = activations.feedsOf(slot.index, true, stageOutputs !== undefined);
      const r = await this.sessions.busy(slot.worker, executor.run(slot.worker, slot.key, stageFeeds));
      const worker = executor.workerName(slot.worker);
      events.push({ unit: "E", stage: slot.index, worker, start: r.start, end: r.end, bytes: 0 });
      for (const [name, t] of Object.entries(r.outputs)) {
        if (stageOutputs) stageOutputs[name] = t;
        if (outputNames.has(name)) outputs[name] = t;
      }
      activations.produced(slot.index, r.outputs);
      if (this.streaming) await this.unload(slot);
    }
    for (const o of this.manifest.outputs) {
      if (!(o.name in outputs)) {
        throw new CicadaError(
          "E_OUTPUT_MISSING",
          `${this.bundle.dir}: the model produced no output '${o.name}' (manifest outputs: ${this.manifest.outputs.map((x) => x.name).join(", ")})`,
        );
      }
    }
    try {
      await this.loader.verified();
    } catch (e) {
      // Computed from weights that failed verification: not returned, and the sessions go (the entry was
      // removed), so the next request loads again from a rebuilt entry.
      for (const slot of this.slots) await this.unload(slot);
      throw e;
    }
    const loading = cold ? this.sessions.takeEvents() : [];
    const read0 = cold ? (this.loadRead ?? requestRead) : requestRead;
    const read1 = storageReadBytes();
    const trace: Trace = {
      requestStart: cold ? Math.min(this.loadStart, requestStart) : requestStart,
      requestEnd: now(),
      events: [...loading, ...events],
      ...(this.plan === "pipeline" ? { hazard: this.options.hazard ?? DEFAULTS.hazard } : {}),
      ...(read0 !== undefined && read1 !== undefined ? { storageReadBytes: read1 - read0 } : {}),
    };
    return stageOutputs ? { outputs, trace, cold, stageOutputs } : { outputs, trace, cold };
  }

  async dispose(): Promise<void> {
    this.runtime.pool.off("worker-died", this.onWorkerDied);
    await this.loader.abort(new CicadaError("E_USAGE", "the model was disposed"));
    await Promise.allSettled(this.slots.map((s) => s.ready));
    await Promise.allSettled(
      this.slots.map(async (s) => {
        if (s.state === "ready") await this.sessions.executor.release(s.worker, s.key);
        s.state = "released";
      }),
    );
  }
}
