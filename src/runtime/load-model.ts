// The public API of the runtime: `loadModel` starts a cold start and returns at once; `run` may be called
// immediately and executes stage i as soon as it is ready (execute-while-load); later runs reuse the
// stages (warm); `dispose` frees everything. The strategy decides how each stage is loaded (see
// strategy.ts); the pipeline loop below is the same for all of them: L, R, A per stage as the strategy
// says, E_i after A_i and E_{i-1}, every unit task recorded on one clock.
import { randomBytes } from "node:crypto";
import { existsSync } from "node:fs";
import { join } from "node:path";
import { readFile } from "node:fs/promises";
import { CicadaError, isCicadaError } from "../errors.js";
import {
  openBundle,
  readStageStructure,
  readStageWeights,
  stageExternalData,
  type Bundle,
} from "../format/bundle.js";
import type { Manifest } from "../format/manifest.js";
import { now, type Trace, type TraceEvent, type Unit } from "../metrics/trace.js";
import { ensureOrtBestModel, ensurePiselStages, sourceModelOf } from "./derived-forms.js";
import { verifyForm } from "../cache/forms.js";
import { evictEntry, evictForm } from "../cache/eviction.js";
import { identitiesOf, identityOrGone, verifyBytes } from "../cache/integrity.js";
import type { MiniLoaderEntry, OptimizedStage } from "../cache/miniloader-entry.js";
import type { HostTensor } from "./host-tensor.js";
import { ensureOptimizedStages, findOptimizedStages } from "./miniloader/ensure.js";
import { getsWholeGraph, wholeModelMaxBytes } from "./miniloader/plan.js";
import { isVerified, markVerified, verifyEntry, verifyGraphs } from "./miniloader/verify.js";
import { validateInputs } from "./model-inputs.js";
import { looksResident } from "./residency.js";
import { createScheduler } from "./retrieval-scheduler.js";
import type { Runtime } from "./runtime.js";
import type { StrategyName } from "../config.js";
import { COMPONENTS, SESSION_CONFIGS } from "./strategy.js";
import { WeightRetriever } from "./weight-retriever.js";
import type { SessionSource, StageSessionConfig, WorkerPool } from "./worker-pool.js";

/** Options of {@link loadModel}. */
export interface LoadOptions {
  strategy: StrategyName;
  /** A_i waits for A_{i-1} (the paper's hazard rule, `strict`) or only for L_i and R_i (`relaxed`). */
  hazard?: "strict" | "relaxed";
  /** Bytes per retrieval read (default 4 MiB). */
  chunkBytes?: number;
  /** preload: stage buffers alive at most (default 1 GiB). */
  memoryBudgetBytes?: number;
  /** cicada: skip retrieving cached weights that are already in the page cache (default true). */
  skipResident?: boolean;
  /**
   * mini, cicada, ort-best: let kernels prepack the mapped weights (default false: prepacking copies every
   * MatMul/Gemm weight at creation; it pays only for a model kept warm for many requests).
   */
  prepack?: boolean;
  /**
   * cicada: `pipeline` runs the bundle's stages as a pipeline; `whole` builds one session from MiniLoader's
   * whole-model graph, its weights mapped, and runs it while the WeightDecoupler reads (and verifies) the
   * data file in execution order, when it is not resident or not yet verified; `auto` (default) chooses
   * `whole` when MiniLoader has that graph (models up to {@link wholeModelMaxBytes}), else `pipeline`.
   * NOTE: measured on 2 cores, stage sessions only add work to execution, which already uses both cores,
   * and the whole graph's execution overlaps its retrieval as a pipeline's stages do
   * (docs/runtime-measurements.md).
   */
  plan?: "auto" | PlanName;
}

/** How a model is executed: as the bundle's stages in a pipeline, or as one whole-model session. */
export type PlanName = "pipeline" | "whole";

/** The result of one request. */
export interface ModelRun {
  outputs: Record<string, HostTensor>;
  /** Every unit task of the request; for the first (cold) request, the loading units too. */
  trace: Trace;
  /**
   * True if the request waited for (part of) a load: the first request while the model is loading, or one
   * that had to rebuild a lost stage. A request that arrives after `loaded` resolved is warm.
   */
  cold: boolean;
  /**
   * With `RunOptions.stageOutputs`: every stage's outputs, by tensor name (a whole-model strategy has one
   * stage, so only the graph outputs).
   */
  stageOutputs?: Record<string, HostTensor>;
}

/** Options of one request. */
export interface RunOptions {
  /** Keep a copy of every stage output (for per-stage checks against eager; costs one copy each). */
  stageOutputs?: boolean;
}

/** A model being loaded or loaded. */
export interface LoadedModel {
  readonly strategy: StrategyName;
  /** The plan this load uses (always `whole` for eager and ort-best). */
  readonly plan: PlanName;
  readonly manifest: Manifest;
  /** Resolves when every stage is ready (rejects if one failed to load). */
  readonly loaded: Promise<void>;
  run(feeds: Record<string, HostTensor>, options?: RunOptions): Promise<ModelRun>;
  dispose(): Promise<void>;
}

/** The stage lifecycle; `transition` refuses illegal moves. */
type StageState = "unloaded" | "loading" | "ready" | "failed" | "released";
const LEGAL: Record<StageState, StageState[]> = {
  unloaded: ["loading", "released"],
  loading: ["ready", "failed", "released"],
  ready: ["unloaded", "released"],
  failed: ["loading", "released"],
  released: [],
};

interface StageSlot {
  index: number;
  worker: number;
  key: string;
  state: StageState;
  ready: Promise<void>;
}

/** The external-data files a model file names (resolved beside it). */
async function externalFilesOf(modelPath: string): Promise<string[]> {
  const { externalLocation, isExternal, readOnnxFile } = await import("../format/onnx-io.js");
  const { model, dir } = await readOnnxFile(modelPath);
  const files = new Set<string>();
  for (const t of model.graph?.initializer ?? []) {
    if (isExternal(t)) files.add(join(dir, externalLocation(t, modelPath).location));
  }
  return [...files];
}

/**
 * Paths of what a strategy's cold start reads (for the benchmark's page-cache control); for cicada, with
 * `plan` (default auto: the whole-model graph when MiniLoader has one).
 */
export async function filesRead(
  runtime: Runtime,
  bundleDir: string,
  strategy: StrategyName,
  plan: "auto" | PlanName = "auto",
): Promise<string[]> {
  const bundle = await openBundle(bundleDir);
  const stages = bundle.manifest.stages.map((s) => `${bundle.dir}/${s.file}`);
  switch (strategy) {
    case "eager": {
      // The original model and the external-data files beside it that it names.
      const source = await sourceModelOf(bundle, runtime.cacheRoot);
      return [source, ...(await externalFilesOf(source))];
    }
    case "ort-best":
      return (await ensureOrtBestModel(bundle, runtime.cacheRoot)).map((f) => f.path);
    case "pisel":
      return (await ensurePiselStages(bundle, runtime.cacheRoot)).map((f) => f.path);
    case "preload":
      return [bundle.weightsPath, ...stages];
    case "mini": {
      const { entry } = await ensureOptimizedStages(bundle, runtime.cacheRoot);
      return entry.stages.flatMap((s) => [s.modelPath, s.dataPath]);
    }
    case "cicada": {
      const { entry } = await ensureOptimizedStages(bundle, runtime.cacheRoot);
      const graphs = runsWhole(entry, plan) ? [entry.whole!] : entry.stages;
      return graphs.flatMap((s) => [s.modelPath, s.dataPath]);
    }
  }
}

/** Builds the on-disk forms a strategy needs (outside any request's clock). */
export async function prepareModel(
  runtime: Runtime,
  bundleDir: string,
  strategy: StrategyName,
): Promise<void> {
  await filesRead(runtime, bundleDir, strategy);
}

/** How ort-adapter.ts words a session that onnxruntime could not create (also across the worker boundary). */
const CREATE_FAILED = "onnxruntime could not create a session";

/** Derived graphs onnxruntime could not load in this process: bypassed for the bundle's own graph. */
const unloadable = new Set<string>();

class ModelHandle implements LoadedModel {
  readonly manifest: Manifest;
  loaded: Promise<void> = Promise.resolve();
  private readonly id = randomBytes(4).toString("hex");
  private readonly slots: StageSlot[];
  /** L, R and A tasks of loading (and of reloads) not yet handed to a request's trace. */
  private loadEvents: TraceEvent[] = [];
  private loadStart = now();
  private retriever: WeightRetriever | undefined;
  private entry: MiniLoaderEntry | undefined;
  /** cicada's whole plan: loads so far, and the retrieval and verification of the current load's weights. */
  private wholeLoads = 0;
  private buildStarted = false;
  private weightsChecked: Promise<void> = Promise.resolve();
  private readonly onWorkerDied = (death: { worker: number }) => {
    for (const s of this.slots)
      if (s.worker === death.worker && s.state === "ready") this.transition(s, "unloaded");
  };

  constructor(
    private readonly runtime: Runtime,
    private readonly bundle: Bundle,
    readonly strategy: StrategyName,
    private readonly options: LoadOptions,
    readonly plan: PlanName,
    /**
     * cicada: when choosing the plan took place (part of construction: it reads MiniLoader's entry), the
     * entry, or `build` when there is none yet: the bundle's own graph is loaded now, and MiniLoader's
     * entry built after the first request (see {@link choosePlan}).
     */
    private readonly planning?: {
      start: number;
      end: number;
      entry?: MiniLoaderEntry;
      build?: () => Promise<void>;
    },
    /** Where sessions are built and run: the runtime's stage workers, or this thread (inline-sessions.ts). */
    private readonly executor: Executor = runtime.pool,
  ) {
    this.manifest = bundle.manifest;
    const count = plan === "pipeline" ? bundle.manifest.stages.length : 1;
    const workers = runtime.pool.size;
    this.slots = Array.from({ length: count }, (_, i) => ({
      index: i,
      worker: i % workers,
      key: `${this.id}:${i}`,
      state: "unloaded",
      ready: Promise.resolve(),
    }));
    this.outstanding = new Array<number>(workers).fill(0);
    runtime.pool.on("worker-died", this.onWorkerDied);
  }

  /** The session options of a stage (or model) whose optimised graph maps its weights. */
  private get mapped(): StageSessionConfig {
    return { ...SESSION_CONFIGS.mapped, prepacking: this.options.prepack ?? false };
  }

  private transition(slot: StageSlot, to: StageState): void {
    if (!LEGAL[slot.state].includes(to)) {
      throw new CicadaError(
        "E_RUNTIME",
        `stage ${slot.index}: illegal lifecycle move ${slot.state} -> ${to}`,
      );
    }
    slot.state = to;
  }

  private record(unit: Unit, stage: number, worker: string, start: number, end: number, bytes = 0): void {
    this.loadEvents.push({ unit, stage, worker, start, end, bytes });
  }

  /** Requests of this model outstanding per worker. */
  private readonly outstanding: number[];

  private leastBusyWorker(): number {
    let best = 0;
    for (let w = 1; w < this.outstanding.length; w++)
      if (this.outstanding[w]! < this.outstanding[best]!) best = w;
    return best;
  }

  private async busy<T>(worker: number, request: Promise<T>): Promise<T> {
    this.outstanding[worker]!++;
    try {
      return await request;
    } finally {
      this.outstanding[worker]!--;
    }
  }

  /** L or A: one session creation on the stage's worker, recorded with the worker's own timing. */
  private async create(
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
    const r = await this.busy(slot.worker, this.executor.create(slot.worker, slot.key, source, config));
    this.record(unit, slot.index, this.executor.workerName(slot.worker), r.start, r.end, bytes);
  }

  /** Files each ready slot's session maps (or was built from), with their identities when it was created. */
  private readonly mappedFiles = new Map<number, Map<string, string>>();

  /** L or A from a derived graph file that onnxruntime maps; its files are watched for changes. */
  private async createMapped(slot: StageSlot, unit: Unit, files: string[], bytes = 0): Promise<void> {
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
  private async createOrBypass(
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
  private createFromEntry(slot: StageSlot, unit: Unit, g: OptimizedStage, bytes = 0): Promise<void> {
    return this.createOrBypass(
      slot,
      g.modelPath,
      () => this.createMapped(slot, unit, [g.modelPath, g.dataPath], bytes),
      () => this.createFromBundle(slot, unit, slot.index),
    );
  }

  /** The bundle's own stage `index`, built from its verified graph and weights (the bypass of a derived form). */
  private async createFromBundle(slot: StageSlot, unit: Unit, index: number): Promise<void> {
    const stage = this.manifest.stages[index]!;
    const [structure, weights] = await Promise.all([
      readStageStructure(this.bundle, index),
      readStageWeights(this.bundle, index),
    ]);
    const externalData = stageExternalData(stage, weights);
    await this.create(
      slot,
      unit,
      { bytes: structure, externalData },
      SESSION_CONFIGS.stageFromWeights,
      stage.weights.length,
    );
  }

  /** The whole model built from the bundle's own stage graphs and weights, merged (the whole plan's bypass). */
  private async createWholeFromBundle(slot: StageSlot, unit: Unit): Promise<void> {
    const { mergeStages } = await import("./stage-merge.js");
    const merged = await mergeStages(this.bundle, 0, this.manifest.stages.length - 1);
    await this.create(
      slot,
      unit,
      { bytes: merged.model, externalData: merged.externalData },
      SESSION_CONFIGS.stageFromWeights,
      this.manifest.totalWeightBytes,
    );
  }

  /** Ready slots whose mapped files changed since their session was created (a cache file rewritten). */
  private changedSlots(): StageSlot[] {
    return this.slots.filter((s) => {
      const files = this.mappedFiles.get(s.index);
      if (s.state !== "ready" || !files) return false;
      for (const [path, id] of files) if (identityOrGone(path) !== id) return true;
      return false;
    });
  }

  /** Starts the cold start: every stage's loading is under way when this returns. */
  start(): void {
    this.loadStart = this.planning?.start ?? now();
    if (this.planning) this.record("L", 0, "main", this.planning.start, this.planning.end);
    for (const s of this.slots) this.transition(s, "loading");
    const loaders = this.loadAll();
    this.slots.forEach((slot, i) => {
      slot.ready = loaders[i]!.then(
        () => this.transition(slot, "ready"),
        (e: unknown) => {
          if (slot.state === "loading") this.transition(slot, "failed");
          throw e;
        },
      );
      // Failures surface through run(); this keeps an unobserved failure from crashing the process.
      slot.ready.catch(() => {});
    });
    this.loaded = Promise.all(this.slots.map((s) => s.ready)).then(() => undefined);
    this.loaded.catch(() => {});
  }

  /** One promise per stage, resolved when its session exists: the strategy's L/R/A plan. */
  private loadAll(): Promise<void>[] {
    const c = COMPONENTS[this.strategy];
    if (this.plan === "whole") return [this.loadWhole()];
    if (c.weightDecoupler) return this.loadDecoupled(this.usesMiniLoader);
    return this.loadSequentialLoader(this.usesMiniLoader);
  }

  /** Whether stages come from MiniLoader's cache (not when cicada runs before its cache is built). */
  private get usesMiniLoader(): boolean {
    return COMPONENTS[this.strategy].miniLoader && this.planning?.build === undefined;
  }

  private async loadWhole(): Promise<void> {
    const slot = this.slots[0]!;
    if (this.planning?.build) {
      // No cache yet: the bundle's own stages merged into one session (what eager does with the source).
      await this.createWholeFromBundle(slot, "A");
    } else if (COMPONENTS[this.strategy].miniLoader) {
      // cicada's whole plan: MiniLoader's whole-model graph (the planner's entry; on a reload, the entry
      // again, rebuilt if it was found corrupt). Its session maps the weights, so it is created and run
      // while the data file is retrieved; run() returns nothing computed from unverified weights.
      let entry =
        this.wholeLoads++ === 0
          ? this.planning!.entry!
          : (await ensureOptimizedStages(this.bundle, this.runtime.cacheRoot)).entry;
      // onnxruntime parses only a verified graph (small: read at once); its data file is verified by R.
      // A corrupt entry is evicted by the check and rebuilt here, within this load.
      try {
        await verifyGraphs(entry, [entry.whole!]);
      } catch (e) {
        if (!isCicadaError(e, "E_BUNDLE_CHECKSUM")) throw e;
        entry = (await ensureOptimizedStages(this.bundle, this.runtime.cacheRoot)).entry;
        await verifyGraphs(entry, [entry.whole!]);
      }
      const whole = entry.whole!;
      // The construction is handed to a worker first; the residency probe and the retrieval's start
      // then run on this thread while the worker builds.
      const created = this.createOrBypass(
        slot,
        whole.modelPath,
        () => this.createMapped(slot, "A", [whole.modelPath, whole.dataPath], whole.dataBytes),
        () => this.createWholeFromBundle(slot, "A"),
      );
      this.weightsChecked = this.retrieveWhole(entry);
      this.weightsChecked.catch(() => {});
      try {
        await created;
      } catch (e) {
        // A corrupt entry is removed as soon as its check fails, which can pull its files from under the
        // session being created: then the cause to report is the checksum, not the missing file.
        await this.retriever?.abort(e).catch(() => {});
        const checked = await this.weightsChecked.then(
          () => undefined,
          (c: unknown) => c,
        );
        throw isCicadaError(checked, "E_BUNDLE_CHECKSUM") ? checked : e;
      }
    } else if (this.strategy === "eager") {
      // What a Node.js user does today: InferenceSession.create(model.onnx) with default options.
      await this.create(
        slot,
        "L",
        { path: await sourceModelOf(this.bundle, this.runtime.cacheRoot) },
        SESSION_CONFIGS.eager,
      );
    } else {
      const files = await ensureOrtBestModel(this.bundle, this.runtime.cacheRoot);
      await verifyForm(files);
      await this.createOrBypass(
        slot,
        files[0]!.path,
        () =>
          this.createMapped(
            slot,
            "L",
            files.map((f) => f.path),
          ),
        async () =>
          this.create(
            slot,
            "L",
            { path: await sourceModelOf(this.bundle, this.runtime.cacheRoot) },
            SESSION_CONFIGS.eager,
          ),
      );
    }
  }

  /**
   * R for the whole plan: the whole graph's data file, read front to back (it is in execution order) so
   * that execution, which faults the mapped weights in as it reaches them, finds them in the page cache;
   * verified against its checksum as it passes unless verified already. Skipped when there is nothing to
   * do. A corrupt entry is removed (the next load rebuilds it) and the error thrown.
   */
  private async retrieveWhole(entry: MiniLoaderEntry): Promise<void> {
    const whole = entry.whole!;
    const verify = !isVerified(entry, [whole]);
    if (!verify && this.options.skipResident !== false && looksResident(whole.dataPath, 0, whole.dataBytes))
      return;
    // NOTE: on this thread's executor, execution faults the mapped weights in with the kernel's readahead,
    // and no retrieval of ours beat that: queueing every read of the file at once (the only retrieval that
    // progresses while create and run block this thread) made vgg16's evicted cold start 1.58x plain
    // onnxruntime's instead of 1.01x (docs/runtime-measurements.md): the copies into user space take the
    // cores execution needs, and the kernel already reads at the disk's speed.
    if (!verify && this.executor !== this.runtime.pool) return;
    const retriever = new WeightRetriever(
      [
        {
          stage: 0,
          path: whole.dataPath,
          offset: 0,
          length: whole.dataBytes,
          ...(verify ? { checksum: whole.dataChecksum } : {}),
        },
      ],
      {
        mode: "prefetch",
        scheduler: createScheduler("priority"),
        ...(this.options.chunkBytes ? { chunkBytes: this.options.chunkBytes } : {}),
        onEvent: (e) => this.loadEvents.push(e),
      },
    );
    this.retriever = retriever;
    retriever.start();
    try {
      await retriever.whenRetrieved(0);
    } catch (e) {
      if (isCicadaError(e, "E_BUNDLE_CHECKSUM")) await evictEntry(entry);
      throw e;
    }
    if (verify) markVerified(entry, [whole]);
  }

  /**
   * PISeL's loader (and `mini`): builds stage i completely, then stage i+1; the executor runs E_i as soon
   * as stage i is ready. pisel reads a self-contained stage file and constructs it with default options;
   * mini constructs from MiniLoader's cached optimised graph by path (weights mapped, nothing copied).
   */
  private loadSequentialLoader(miniLoader: boolean): Promise<void>[] {
    const done: Promise<void>[] = [];
    let previous: Promise<void> = Promise.resolve();
    // mini has no retrieval unit to verify the cached weights as they pass: it verifies them up front,
    // once per process.
    const entry = miniLoader ? this.verifiedEntry() : undefined;
    let files = miniLoader ? undefined : ensurePiselStages(this.bundle, this.runtime.cacheRoot);
    // PISeL's file is read whole into memory and verified there, so what onnxruntime parses is what was
    // checked; a corrupt file's form is removed and rebuilt, once per load.
    let rebuilt = false;
    const readStageFile = async (index: number): Promise<Uint8Array> => {
      const file = (await files!)[index]!;
      const bytes = await readFile(file.path);
      try {
        verifyBytes(file, bytes);
        return bytes;
      } catch (e) {
        if (rebuilt) throw e;
        rebuilt = true;
        await evictForm(file);
        files = ensurePiselStages(this.bundle, this.runtime.cacheRoot);
        return readStageFile(index);
      }
    };
    for (const slot of this.slots) {
      const mine = previous.then(async () => {
        if (entry) {
          await this.createFromEntry(slot, "L", (await entry).stages[slot.index]!);
          return;
        }
        const r0 = now();
        const bytes = await readStageFile(slot.index);
        this.record("R", slot.index, "main", r0, now(), bytes.byteLength);
        await this.create(slot, "L", { bytes }, SESSION_CONFIGS.stageFromWeights, bytes.byteLength);
      });
      done.push(mine);
      // A failed stage does not stop the loader from building the next ones.
      previous = mine.catch(() => {});
    }
    return done;
  }

  /**
   * WeightDecoupler: every retrieval is issued now, in stage order, in the background; L_i runs alongside;
   * A_i starts once L_i, R_i (and, under the strict hazard rule, A_{i-1}) are done. Without MiniLoader,
   * R reads each stage's weights into its own buffer, bound in memory at A and dropped at once; with it,
   * R makes the cached optimised weights resident in the page cache (verifying them) and A creates the
   * session by path, so onnxruntime maps the weights instead of copying them.
   */
  private loadDecoupled(miniLoader: boolean): Promise<void>[] {
    const c = COMPONENTS[this.strategy];
    const entryReady = miniLoader
      ? ensureOptimizedStages(this.bundle, this.runtime.cacheRoot).then((r) => r.entry)
      : undefined;
    const retrieverReady = (async () => {
      const entry = await entryReady;
      this.entry = entry;
      const verify = entry ? !isVerified(entry, entry.stages) : true;
      // onnxruntime parses only verified graphs (small: read at once); data files are verified by R.
      if (entry) await verifyGraphs(entry, entry.stages);
      // Cached weights already verified in this process and already in the page cache need no retrieval.
      const resident =
        entry && !verify && this.options.skipResident !== false
          ? entry.stages.map((s) => looksResident(s.dataPath, 0, s.dataBytes))
          : [];
      const ranges = entry
        ? entry.stages.map((s, i) => ({
            stage: i,
            path: s.dataPath,
            offset: 0,
            length: resident[i] ? 0 : s.dataBytes,
            ...(verify ? { checksum: s.dataChecksum } : {}),
          }))
        : this.manifest.stages.map((s) => ({
            stage: s.index,
            path: this.bundle.weightsPath,
            offset: s.weights.offset,
            length: s.weights.length,
            checksum: s.weights.checksum,
          }));
      const retriever = new WeightRetriever(ranges, {
        mode: entry ? "prefetch" : "buffer",
        scheduler: createScheduler(c.scheduler ? "priority" : "fifo"),
        memoryBudgetBytes: this.options.memoryBudgetBytes ?? 1 << 30,
        ...(this.options.chunkBytes ? { chunkBytes: this.options.chunkBytes } : {}),
        onEvent: (e) => this.loadEvents.push(e),
      });
      this.retriever = retriever;
      retriever.start();
      return retriever;
    })();
    const strict = (this.options.hazard ?? "strict") === "strict";
    const applied: Promise<void>[] = [];
    for (const slot of this.slots) {
      const i = slot.index;
      const construct = (async () => {
        const l0 = now();
        const structure = entryReady ? undefined : await readStageStructure(this.bundle, i);
        const entry = await entryReady;
        this.record("L", i, "main", l0, now(), structure?.byteLength ?? 0);
        return { structure, entry };
      })();
      // Awaited below once R's retriever exists; a failure before that is reported through A's promise.
      construct.catch(() => {});
      const previous = i > 0 && strict ? applied[i - 1]!.catch(() => {}) : Promise.resolve();
      applied.push(
        (async () => {
          const retriever = await retrieverReady;
          const [{ structure, entry }] = await Promise.all([construct, previous]);
          // The stall rule: A_i is ready to go and waits only for R_i.
          if (retriever.status(i) !== "retrieved") retriever.waiting(i);
          const weights = await retriever.whenRetrieved(i).catch(async (e: unknown) => {
            // A cached entry whose bytes fail verification is never trusted again: it is gone before the
            // failure is seen, so that the reload it causes rebuilds it.
            if (entry && isCicadaError(e, "E_BUNDLE_CHECKSUM")) await evictEntry(entry);
            throw e;
          });
          if (entry) {
            await this.createFromEntry(slot, "A", entry.stages[i]!, entry.stages[i]!.dataBytes);
          } else {
            const stage = this.manifest.stages[i]!;
            const externalData = stageExternalData(stage, weights ?? new Uint8Array(0));
            await this.create(
              slot,
              "A",
              { bytes: structure!, externalData },
              SESSION_CONFIGS.stageFromWeights,
              stage.weights.length,
            );
            retriever.release(i);
          }
        })(),
      );
    }
    void Promise.all(applied).then(
      () => {
        if (this.entry) markVerified(this.entry, this.entry.stages);
      },
      () => {},
    );
    return applied;
  }

  /** The MiniLoader entry, verified once per process; a corrupt one is removed and rebuilt, never used. */
  private async verifiedEntry(): Promise<MiniLoaderEntry> {
    const { entry } = await ensureOptimizedStages(this.bundle, this.runtime.cacheRoot);
    try {
      await verifyEntry(entry, entry.stages);
      return entry;
    } catch (e) {
      // Corrupt (and removed), or removed while it was read by another's eviction: rebuilt, once.
      const gone = (e as NodeJS.ErrnoException | undefined)?.code === "ENOENT";
      if (!(isCicadaError(e, "E_BUNDLE_CHECKSUM") || gone)) throw e;
      const rebuilt = (await ensureOptimizedStages(this.bundle, this.runtime.cacheRoot)).entry;
      await verifyEntry(rebuilt, rebuilt.stages);
      return rebuilt;
    }
  }

  /** Reloads one stage outside the pipeline (after a failure or a worker's death). */
  private async reloadStage(slot: StageSlot): Promise<void> {
    this.transition(slot, "loading");
    try {
      if (this.plan === "whole") await this.loadWhole();
      else if (this.usesMiniLoader) {
        await this.createFromEntry(slot, "A", (await this.verifiedEntry()).stages[slot.index]!);
      } else await this.createFromBundle(slot, "A", slot.index);
      this.transition(slot, "ready");
    } catch (e) {
      this.transition(slot, "failed");
      throw e;
    }
  }

  private async stageReady(slot: StageSlot): Promise<void> {
    if (slot.state === "released") throw new CicadaError("E_USAGE", "the model was disposed");
    if (slot.state === "unloaded" || slot.state === "failed") await this.repair(slot);
    await slot.ready.catch(async (e: unknown) => {
      // A stage of MiniLoader's entry that failed its check was never created (A waits for R), and the
      // entry is gone: the stage is rebuilt from a new entry within this request.
      const rebuildable =
        isCicadaError(e, "E_BUNDLE_CHECKSUM") && this.plan === "pipeline" && this.usesMiniLoader;
      if (!rebuildable) throw e;
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

  async run(feeds: Record<string, HostTensor>, options: RunOptions = {}): Promise<ModelRun> {
    validateInputs(this.manifest.inputs, feeds, this.bundle.dir);
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
    const changed = this.changedSlots();
    if (changed.length === 0) return result;
    for (const slot of changed) {
      this.transition(slot, "unloaded");
      this.mappedFiles.delete(slot.index);
      await this.executor.release(slot.worker, slot.key).catch(() => {});
    }
    const again = await this.runOnce(feeds, options);
    if (this.changedSlots().length > 0) {
      throw new CicadaError(
        "E_BUNDLE_CHECKSUM",
        `${this.bundle.dir}: cache files of this model keep changing while it runs; no output is returned`,
      );
    }
    return { ...again, cold: true };
  }

  private async runOnce(feeds: Record<string, HostTensor>, options: RunOptions): Promise<ModelRun> {
    const requestStart = now();
    // Cold: the request waits for (part of) a load; its trace then holds the load's units.
    const cold = this.slots.some((s) => s.state !== "ready");
    // Each request has its own trace, so that concurrent requests on one handle do not mix theirs.
    const events: TraceEvent[] = [];
    const stageSpecs =
      this.plan === "pipeline"
        ? this.manifest.stages.map((s) => ({ inputs: s.inputs.map((i) => i.name) }))
        : [{ inputs: this.manifest.inputs.map((i) => i.name) }];
    const lastUse = new Map<string, number>();
    stageSpecs.forEach((s, i) => s.inputs.forEach((n) => lastUse.set(n, i)));
    const graphInputs = new Set(Object.keys(feeds));
    const live = new Map<string, HostTensor>(Object.entries(feeds));
    const outputNames = new Set(this.manifest.outputs.map((o) => o.name));
    const outputs: Record<string, HostTensor> = {};
    const stageOutputs: Record<string, HostTensor> | undefined = options.stageOutputs ? {} : undefined;
    for (const slot of this.slots) {
      await this.stageReady(slot);
      const stageFeeds: Record<string, HostTensor> = {};
      for (const name of stageSpecs[slot.index]!.inputs) {
        const t = live.get(name);
        if (!t) {
          throw new CicadaError(
            "E_OUTPUT_MISSING",
            `${this.bundle.dir}: stage ${slot.index} reads '${name}', which no earlier stage produced`,
          );
        }
        // Feeds are transferred to the worker: copy the caller's tensors, any activation read again later
        // and, when asked, every stage output.
        const keep =
          graphInputs.has(name) || (lastUse.get(name) ?? -1) > slot.index || stageOutputs !== undefined;
        stageFeeds[name] = keep ? { ...t, data: t.data.slice() } : t;
        if (!keep) live.delete(name);
      }
      const r = await this.busy(slot.worker, this.executor.run(slot.worker, slot.key, stageFeeds));
      const worker = this.executor.workerName(slot.worker);
      events.push({ unit: "E", stage: slot.index, worker, start: r.start, end: r.end, bytes: 0 });
      for (const [name, t] of Object.entries(r.outputs)) {
        if (stageOutputs) stageOutputs[name] = t;
        if (outputNames.has(name)) outputs[name] = t;
        if ((lastUse.get(name) ?? -1) > slot.index) live.set(name, t);
      }
    }
    for (const o of this.manifest.outputs) {
      if (!(o.name in outputs)) {
        throw new CicadaError(
          "E_OUTPUT_MISSING",
          `${this.bundle.dir}: the model produced no output '${o.name}' (manifest outputs: ${this.manifest.outputs.map((x) => x.name).join(", ")})`,
        );
      }
    }
    if (this.plan === "whole") {
      try {
        await this.weightsChecked;
      } catch (e) {
        // Computed from weights that failed verification: not returned, and the session goes (the entry
        // was removed), so the next request loads again from a rebuilt entry.
        const slot = this.slots[0]!;
        if (slot.state === "ready") {
          this.transition(slot, "unloaded");
          await this.executor.release(slot.worker, slot.key).catch(() => {});
        }
        throw e;
      }
    }
    const loading = cold ? this.loadEvents : [];
    if (cold) this.loadEvents = [];
    const trace: Trace = {
      requestStart: cold ? Math.min(this.loadStart, requestStart) : requestStart,
      requestEnd: now(),
      events: [...loading, ...events],
    };
    return stageOutputs ? { outputs, trace, cold, stageOutputs } : { outputs, trace, cold };
  }

  async dispose(): Promise<void> {
    this.runtime.pool.off("worker-died", this.onWorkerDied);
    await this.retriever?.abort(new CicadaError("E_USAGE", "the model was disposed")).catch(() => {});
    await Promise.allSettled(this.slots.map((s) => s.ready));
    await Promise.allSettled(
      this.slots.map(async (s) => {
        if (s.state === "ready") await this.executor.release(s.worker, s.key);
        s.state = "released";
      }),
    );
  }
}

/**
 * Starts loading the bundle in `bundleDir` with `options.strategy` and returns at once (after reading the
 * manifest). `run` may be called immediately.
 */
export async function loadModel(
  runtime: Runtime,
  bundleDir: string,
  options: LoadOptions,
): Promise<LoadedModel> {
  const bundle = await openBundle(bundleDir);
  const start = now();
  const { plan, entry, build } = await choosePlan(runtime, bundle, options);
  const planning =
    options.strategy === "cicada"
      ? { start, end: now(), ...(entry ? { entry } : {}), ...(build ? { build } : {}) }
      : undefined;
  const inline = plan === "whole" && options.strategy === "cicada" && runsInline(runtime, entry);
  const model = new ModelHandle(
    runtime,
    bundle,
    options.strategy,
    options,
    plan,
    planning,
    inline ? runtime.inline : runtime.pool,
  );
  model.start();
  return model;
}

/** The planner's rule for cicada: the whole graph unless the pipeline is asked for or there is none. */
function runsWhole(entry: MiniLoaderEntry, asked: "auto" | PlanName): boolean {
  return asked !== "pipeline" && entry.whole !== undefined;
}

/**
 * The executor rule: a whole-model load of a verified MiniLoader graph (or of the bundle's merged graph
 * while there is no cache) runs on this thread, unless the runtime asked for workers. Nothing is left for
 * this thread to overlap: R has no checksums to compute, execution faults the weights in; a stage worker
 * would only add its own start.
 */
function runsInline(runtime: Runtime, entry: MiniLoaderEntry | undefined): boolean {
  // Without an entry the bundle's merged graph runs, built from weights this thread reads and verifies.
  return runtime.executor === "auto" && (entry === undefined || isVerified(entry, [entry.whole!]));
}

/** What runs sessions for a loaded model: the worker pool or {@link InlineSessions} (same calls). */
type Executor = Pick<WorkerPool, "create" | "run" | "release" | "workerName">;

/** The plan of a load (see {@link LoadOptions.plan}). */
async function choosePlan(
  runtime: Runtime,
  bundle: Bundle,
  options: LoadOptions,
): Promise<{ plan: PlanName; entry?: MiniLoaderEntry; build?: () => Promise<void> }> {
  if (!COMPONENTS[options.strategy].staged) return { plan: "whole" };
  const asked = options.plan ?? "auto";
  if (options.strategy !== "cicada" || asked === "pipeline") return { plan: "pipeline" };
  const entry = await findOptimizedStages(bundle, runtime.cacheRoot);
  const fitsWhole = getsWholeGraph(bundle);
  if (!entry && (fitsWhole || asked === "auto")) {
    // No cache (a new machine, another CPU or onnxruntime, a read-only image): building it now would
    // cost this request several plain cold starts. The bundle's own graph runs instead, as one session
    // when MiniLoader would give it one, and the cache is built after the first answer.
    const build = async () => {
      await ensureOptimizedStages(bundle, runtime.cacheRoot);
    };
    return { plan: fitsWhole ? "whole" : "pipeline", build };
  }
  if (entry && runsWhole(entry, asked)) return { plan: "whole", entry };
  if (asked === "whole") {
    throw new CicadaError(
      "E_USAGE",
      `plan 'whole': ${bundle.dir} has ${bundle.manifest.totalWeightBytes} bytes of weights, more than the ${wholeModelMaxBytes()} MiniLoader builds a whole-model graph for on this machine`,
    );
  }
  return { plan: "pipeline" };
}
