// cicada's whole plan: one session from MiniLoader's whole-model graph, its weights mapped from the data
// file, created and run while the WeightDecoupler reads that file front to back (it is in execution order)
// and verifies it when this process has not yet. A request's outputs wait for the verification: nothing
// computed from unverified weights is returned (see verified()).
import { isCicadaError } from "../../errors.js";
import { ensureOptimizedStages } from "../miniloader/ensure.js";
import { evictEntry } from "../../cache/eviction.js";
import { isVerified, markVerified, verifyGraphs } from "../miniloader/verify.js";
import type { MiniLoaderEntry } from "../../cache/miniloader-entry.js";
import type { StageSlot } from "../model/stage-slot.js";
import { looksResident } from "../weight-decoupler/residency.js";
import { createScheduler } from "../weight-decoupler/retrieval-scheduler.js";
import { WeightRetriever } from "../weight-decoupler/weight-retriever.js";
import type { LoaderContext } from "./loader.js";
import { WholeLoader } from "./whole.js";

/** The whole-graph loader; `entry` is the planner's (the first load uses it, reloads look it up again). */
export class MappedWholeLoader extends WholeLoader {
  private retriever: WeightRetriever | undefined;
  private checked: Promise<void> = Promise.resolve();

  constructor(
    private readonly ctx: LoaderContext,
    private entry: MiniLoaderEntry | undefined,
  ) {
    super();
  }

  override verified(): Promise<void> {
    return this.checked;
  }

  override async abort(reason: Error): Promise<void> {
    await this.retriever?.abort(reason).catch(() => {});
  }

  protected override async build(slot: StageSlot): Promise<void> {
    const { bundle, runtime, sessions } = this.ctx;
    const rebuild = async () =>
      (await ensureOptimizedStages(bundle, runtime.cacheRoot, { forms: ["whole"] })).entry;
    let entry = this.entry ?? (await rebuild());
    this.entry = undefined;
    // onnxruntime parses only a verified graph (small: read at once); its data file is verified by R.
    // A corrupt entry is evicted by the check and rebuilt here, within this load.
    try {
      await verifyGraphs(entry, [entry.whole!]);
    } catch (e) {
      if (!isCicadaError(e, "E_BUNDLE_CHECKSUM")) throw e;
      entry = await rebuild();
      await verifyGraphs(entry, [entry.whole!]);
    }
    const whole = entry.whole!;
    // The construction is handed to the executor first; the residency probe and the retrieval's start
    // then run on this thread while it builds.
    const created = sessions.createOrBypass(
      slot,
      whole.modelPath,
      () => sessions.createMapped(slot, "A", [whole.modelPath, whole.dataPath], whole.dataBytes),
      () => sessions.createWholeFromBundle(slot, "A"),
    );
    this.checked = this.retrieve(entry);
    this.checked.catch(() => {});
    try {
      await created;
    } catch (e) {
      // A corrupt entry is removed as soon as its check fails, which can pull its files from under the
      // session being created: then the cause to report is the checksum, not the missing file.
      await this.retriever?.abort(e).catch(() => {});
      const checked = await this.checked.then(
        () => undefined,
        (c: unknown) => c,
      );
      throw isCicadaError(checked, "E_BUNDLE_CHECKSUM") ? checked : e;
    }
  }

  /**
   * R: the whole graph's data file, read front to back so that execution, which faults the mapped weights
   * in as it reaches them, finds them in the page cache; verified against its checksum as it passes unless
   * verified already. Skipped when there is nothing to do. A corrupt entry is removed (the next load
   * rebuilds it) and the error thrown.
   */
  private async retrieve(entry: MiniLoaderEntry): Promise<void> {
    const { options, sessions, runtime } = this.ctx;
    const whole = entry.whole!;
    const verify = !isVerified(entry, [whole]);
    if (!verify && options.skipResident !== false && looksResident(whole.dataPath, 0, whole.dataBytes))
      return;
    // NOTE: on this thread's executor, execution faults the mapped weights in with the kernel's readahead,
    // and no retrieval of ours beat that: queueing every read of the file at once (the only retrieval that
    // progresses while create and run block this thread) made vgg16's evicted cold start 1.58x plain
    // onnxruntime's instead of 1.01x (docs/runtime-measurements.md): the copies into user space take the
    // cores execution needs, and the kernel already reads at the disk's speed.
    if (!verify && sessions.executor !== runtime.pool) return;
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
        ...(options.chunkBytes ? { chunkBytes: options.chunkBytes } : {}),
        onEvent: (e) => sessions.events.push(e),
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
}
