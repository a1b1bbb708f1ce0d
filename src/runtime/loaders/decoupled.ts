// The WeightDecoupler's loader (preload, and cicada's pipeline): every retrieval is issued at once, in
// stage order, in the background; L_i runs alongside; A_i starts when the pipeline rule says (after L_i
// and R_i, and under the strict hazard rule A_{i-1}); the stall rule tells the scheduler which retrieval
// an application is waiting for. Without MiniLoader, R reads each stage's weights into its own buffer,
// bound at A and dropped at once; with it, R makes the cached optimised weights resident in the page cache
// (verifying them) and A creates the session by path, so onnxruntime maps the weights instead of copying.
import { DEFAULTS } from "../../config.js";
import { isCicadaError } from "../../errors.js";
import { readStageStructure } from "../../format/bundle.js";
import { now } from "../../metrics/trace.js";
import { ensureOptimizedStages } from "../miniloader/ensure.js";
import { evictEntry } from "../../cache/eviction.js";
import { isVerified, markVerified, verifyGraphs } from "../miniloader/verify.js";
import type { MiniLoaderEntry } from "../../cache/miniloader-entry.js";
import { COPY_FACTOR } from "../memory-budget.js";
import type { StageSlot } from "../model/stage-slot.js";
import { looksResident } from "../weight-decoupler/residency.js";
import { createScheduler } from "../weight-decoupler/retrieval-scheduler.js";
import { WeightRetriever, type RetrievalRange } from "../weight-decoupler/weight-retriever.js";
import { BaseLoader, type LoaderContext } from "./loader.js";
import { UnitTasks } from "./unit-tasks.js";
import { verifiedEntry } from "./verified-entry.js";

export class DecoupledLoader extends BaseLoader {
  private retriever: WeightRetriever | undefined;

  constructor(
    private readonly ctx: LoaderContext,
    /** Stages from MiniLoader's cache (cicada with its cache built), else the bundle's own (preload). */
    private readonly miniLoader: boolean,
    /** The retrieval scheduler: Algorithm 1 with the stall rule (`priority`) or issue order (`fifo`). */
    private readonly scheduler: "priority" | "fifo",
  ) {
    super();
  }

  start(slots: readonly StageSlot[]): Promise<void>[] {
    const { bundle, runtime } = this.ctx;
    const entryReady = this.miniLoader
      ? ensureOptimizedStages(bundle, runtime.cacheRoot, { forms: ["stages"] }).then((r) => r.entry)
      : undefined;
    const retrieverReady = this.startRetrieval(entryReady);
    const tasks = new UnitTasks(this.ctx.options.hazard ?? DEFAULTS.hazard);
    const applied = slots.map((slot) => {
      const i = slot.index;
      const L = tasks.set(
        { unit: "L", stage: i },
        (async () => {
          const l0 = now();
          const structure = entryReady ? undefined : await readStageStructure(bundle, i);
          const entry = await entryReady;
          this.ctx.sessions.record("L", i, "main", l0, now(), structure?.byteLength ?? 0);
          return { structure, entry };
        })(),
      );
      return tasks.set({ unit: "A", stage: i }, this.apply(slot, tasks, L, retrieverReady));
    });
    void Promise.all(applied).then(
      async () => {
        const entry = await entryReady;
        if (entry) markVerified(entry, entry.stages);
      },
      () => {},
    );
    return applied;
  }

  /** A_i: once the rule allows, and R_i is done (the stall rule), the session is created. */
  private async apply(
    slot: StageSlot,
    tasks: UnitTasks,
    construct: Promise<{ structure: Uint8Array | undefined; entry: MiniLoaderEntry | undefined }>,
    retrieverReady: Promise<WeightRetriever>,
  ): Promise<void> {
    const i = slot.index;
    const retriever = await retrieverReady;
    // Everything but R_i, which the stall rule handles below.
    await tasks.after({ unit: "A", stage: i }, ["R"]);
    const { structure, entry } = await construct;
    // The stall rule: A_i is ready to go and waits only for R_i.
    if (retriever.status(i) !== "retrieved") retriever.waiting(i);
    const weights = await retriever.whenRetrieved(i).catch(async (e: unknown) => {
      // A cached entry whose bytes fail verification is never trusted again: it is gone before the
      // failure is seen, so that the reload it causes rebuilds it.
      if (entry && isCicadaError(e, "E_BUNDLE_CHECKSUM")) await evictEntry(entry);
      throw e;
    });
    if (entry) {
      const g = entry.stages[i]!;
      await this.ctx.sessions.createFromEntry(slot, "A", g, g.dataBytes);
      return;
    }
    await this.ctx.sessions.createFromBundle(slot, "A", i, {
      structure: structure!,
      weights: weights ?? new Uint8Array(0),
    });
    retriever.release(i);
  }

  /** R: every stage's retrieval issued now, in stage order. */
  private async startRetrieval(entryReady: Promise<MiniLoaderEntry> | undefined): Promise<WeightRetriever> {
    const { bundle, options, sessions } = this.ctx;
    const entry = await entryReady;
    const verify = entry ? !isVerified(entry, entry.stages) : true;
    // onnxruntime parses only verified graphs (small: read at once); data files are verified by R.
    if (entry) await verifyGraphs(entry, entry.stages);
    // Cached weights already verified in this process and already in the page cache need no retrieval.
    const resident =
      entry && !verify && options.skipResident !== false
        ? entry.stages.map((s) => looksResident(s.dataPath, 0, s.dataBytes))
        : [];
    const ranges: RetrievalRange[] = entry
      ? entry.stages.map((s, i) => ({
          stage: i,
          path: s.dataPath,
          offset: 0,
          length: resident[i] ? 0 : s.dataBytes,
          ...(verify ? { checksum: s.dataChecksum } : {}),
        }))
      : bundle.manifest.stages.map((s) => ({
          stage: s.index,
          path: bundle.weightsPath,
          offset: s.weights.offset,
          length: s.weights.length,
          checksum: s.weights.checksum,
        }));
    const retriever = new WeightRetriever(ranges, {
      mode: entry ? "prefetch" : "buffer",
      scheduler: createScheduler(this.scheduler),
      // Read-ahead: the default bound, within the load's memory budget (a session built from a buffer
      // holds about COPY_FACTOR.build times its bytes).
      memoryBudgetBytes: Math.min(
        DEFAULTS.bufferBudgetBytes,
        Math.floor((options.memoryBudgetBytes ?? Infinity) / COPY_FACTOR.build),
      ),
      ...(options.chunkBytes ? { chunkBytes: options.chunkBytes } : {}),
      onEvent: (e) => sessions.events.push(e),
    });
    this.retriever = retriever;
    retriever.start();
    return retriever;
  }

  async reload(slot: StageSlot): Promise<void> {
    const { bundle, runtime, sessions } = this.ctx;
    if (!this.miniLoader) return sessions.createFromBundle(slot, "A", slot.index);
    const entry = await verifiedEntry(bundle, runtime.cacheRoot);
    await sessions.createFromEntry(slot, "A", entry.stages[slot.index]!);
  }

  /** A stage of an entry that failed its check was never created (A waits for R), and the entry is gone. */
  override rebuilds(error: unknown): boolean {
    return this.miniLoader && isCicadaError(error, "E_BUNDLE_CHECKSUM");
  }

  override async abort(reason: Error): Promise<void> {
    await this.retriever?.abort(reason).catch(() => {});
  }
}
