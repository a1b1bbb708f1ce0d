// How a loaded model's stage sessions are made and placed: one session creation (L or A) on the executor's
// least busy worker, recorded on the model's load log with the worker's own timing; the four sources a
// session is built from (a derived graph that onnxruntime maps, MiniLoader's optimised stage, the bundle's
// own stage, the bundle's stages merged); the bypass of derived graphs onnxruntime cannot read back; and
// the watch on mapped files that lets a warm model notice a cache file rewritten under its sessions.
import { existsSync } from "node:fs";
import { isCicadaError } from "../../errors.js";
import { readStageStructure, readStageWeights, stageExternalData, type Bundle } from "../../format/bundle.js";
import type { TraceEvent, Unit } from "../../metrics/trace.js";
import { identitiesOf, identityOrGone } from "../../cache/integrity.js";
import type { OptimizedStage } from "../../cache/miniloader-entry.js";
import { SESSION_CONFIGS } from "../strategy.js";
import type { SessionSource, StageSessionConfig, WorkerPool } from "../worker-pool.js";
import type { StageSlot } from "./stage-slot.js";

/** What runs sessions for a loaded model: the worker pool or InlineSessions (same calls). */
export type Executor = Pick<WorkerPool, "create" | "run" | "release" | "workerName">;

/** How ort-adapter.ts words a session that onnxruntime could not create (also across the worker boundary). */
const CREATE_FAILED = "onnxruntime could not create a session";

/** Derived graphs onnxruntime could not load in this process: bypassed for the bundle's own graph. */
const unloadable = new Set<string>();

/** The stage sessions of one loaded model on one executor. */
export class StageSessions {
  /** L, R and A tasks of loading (and of reloads) not yet handed to a request's trace. */
  events: TraceEvent[] = [];
  /** Requests of this model outstanding per worker. */
  private readonly outstanding: number[];
  /** Files each ready slot's session maps (or was built from), with their identities when it was created. */
  private readonly mappedFiles = new Map<number, Map<string, string>>();

  constructor(
    readonly executor: Executor,
    workers: number,
    private readonly bundle: Bundle,
    /** Session options of a graph whose weights onnxruntime maps. */
    readonly mapped: StageSessionConfig,
    /** Sessions without a memory arena (under an explicit memory budget). */
    private readonly lean = false,
  ) {
    this.outstanding = new Array<number>(workers).fill(0);
  }

  /** Records a unit task of loading. */
  record(unit: Unit, stage: number, worker: string, start: number, end: number, bytes = 0): void {
    this.events.push({ unit, stage, worker, start, end, bytes });
  }

  /** Hands the load log to a request's trace and starts a new one. */
  takeEvents(): TraceEvent[] {
    const events = this.events;
    this.events = [];
    return events;
  }

  /** Counts `request` as outstanding on `worker` while it runs. */
  async busy<T>(worker: number, request: Promise<T>): Promise<T> {
    this.outstanding[worker]!++;
    try {
      return await request;
    } finally {
      this.outstanding[worker]!--;
    }
  }

  private leastBusyWorker(): number {
    let best = 0;
    for (let w = 1; w < this.outstanding.length; w++)
      if (this.outstanding[w]! < this.outstanding[best]!) best = w;
    return best;
  }

  /** L or A: one session creation on the stage's worker, recorded with the worker's own timing. */
  async create(
    slot: StageSlot,
    unit: Unit,
    source: SessionSource,
    config: StageSessionConfig,
    bytes = 0,
  ): Promise<void> {
    // Stage-affine placement by availability: the session is built (and will run) on the worker with the
    // least of this model's work outstanding, so a construction does not queue behind an execution that
    // another worker could have overlapped.
    slot.worker = this.leastBusyWorker();
    const options = this.lean ? { ...config, memoryArena: false } : config;
    const r = await this.busy(slot.worker, this.executor.create(slot.worker, slot.key, source, options));
    this.record(unit, slot.index, this.executor.workerName(slot.worker), r.start, r.end, bytes);
  }

  /** L or A from a derived graph file that onnxruntime maps; its files are watched for changes. */
  async createMapped(slot: StageSlot, unit: Unit, files: string[], bytes = 0): Promise<void> {
    // Taken before the creation, so that a file rewritten while onnxruntime reads it is noticed too.
    const identities = identitiesOf(files);
    await this.create(slot, unit, { path: files[0]! }, this.mapped, bytes);
    this.mappedFiles.set(slot.index, identities);
  }

  /**
   * Creates a session from a derived form (`primary`); if onnxruntime cannot load that form (it writes
   * optimised graphs it cannot read back, e.g. initializers of If subgraphs duplicated), the load goes on
   * from the bundle's own graph (`fallback`) and the form is not tried again in this process.
   */
  async createOrBypass(
    slot: StageSlot,
    form: string,
    primary: () => Promise<void>,
    fallback: () => Promise<void>,
  ): Promise<void> {
    if (!unloadable.has(form)) {
      try {
        return await primary();
      } catch (e) {
        // Only onnxruntime refusing the file is bypassed: not a worker that died meanwhile, nor a file
        // that a failed check evicted from under the creation (the caller reports the checksum).
        if (!isCicadaError(e, "E_RUNTIME") || !e.message.includes(CREATE_FAILED) || !existsSync(form))
          throw e;
        unloadable.add(form);
        process.emitWarning(
          `onnxruntime cannot load its own optimised graph ${form} (${e.message}); stage ${slot.index} is built from the bundle's graph instead`,
          { code: "CICADA_BYPASS" },
        );
      }
    }
    this.mappedFiles.delete(slot.index);
    await fallback();
  }

  /** Stage `slot.index` from MiniLoader's optimised graph `g`, or from the bundle's if onnxruntime cannot load it. */
  createFromEntry(slot: StageSlot, unit: Unit, g: OptimizedStage, bytes = 0): Promise<void> {
    return this.createOrBypass(
      slot,
      g.modelPath,
      () => this.createMapped(slot, unit, [g.modelPath, g.dataPath], bytes),
      () => this.createFromBundle(slot, unit, slot.index),
    );
  }

  /**
   * The bundle's own stage `index`, built from its verified graph and weights (what pisel and preload
   * apply, and the bypass of a derived form). `parts` are its structure and weights when the caller has
   * them already.
   */
  async createFromBundle(
    slot: StageSlot,
    unit: Unit,
    index: number,
    parts?: { structure: Uint8Array; weights: Uint8Array },
  ): Promise<void> {
    const stage = this.bundle.manifest.stages[index]!;
    const [structure, weights] = parts
      ? [parts.structure, parts.weights]
      : await Promise.all([readStageStructure(this.bundle, index), readStageWeights(this.bundle, index)]);
    await this.create(
      slot,
      unit,
      { bytes: structure, externalData: stageExternalData(stage, weights) },
      SESSION_CONFIGS.stageFromWeights,
      stage.weights.length,
    );
  }

  /** The whole model built from the bundle's own stage graphs and weights, merged (the whole plan's bypass). */
  async createWholeFromBundle(slot: StageSlot, unit: Unit): Promise<void> {
    const { mergeStages } = await import("../stage-merge.js");
    const manifest = this.bundle.manifest;
    const merged = await mergeStages(this.bundle, 0, manifest.stages.length - 1);
    await this.create(
      slot,
      unit,
      { bytes: merged.model, externalData: merged.externalData },
      SESSION_CONFIGS.stageFromWeights,
      manifest.totalWeightBytes,
    );
  }

  /** Ready slots whose mapped files changed since their session was created (a cache file rewritten). */
  changed(slots: readonly StageSlot[]): StageSlot[] {
    return slots.filter((s) => {
      const files = this.mappedFiles.get(s.index);
      if (s.state !== "ready" || !files) return false;
      for (const [path, id] of files) if (identityOrGone(path) !== id) return true;
      return false;
    });
  }

  /** Drops a slot's session at the executor (its state is the caller's). */
  async release(slot: StageSlot): Promise<void> {
    this.mappedFiles.delete(slot.index);
    await this.executor.release(slot.worker, slot.key);
  }
}
