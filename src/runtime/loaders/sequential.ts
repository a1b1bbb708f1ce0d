// PISeL's loader and `mini`: stage i is built completely (L), then stage i+1; the model's execution runs E_i
// as soon as stage i is ready. pisel reads a self-contained stage file whole, verifies it and constructs it
// with default options (its R is that read); mini constructs from MiniLoader's cached optimised graph by
// path (weights mapped, nothing copied), verified up front since it has no retrieval unit.
import { DEFAULTS } from "../../config.js";
import { readFile } from "node:fs/promises";
import { isCicadaError } from "../../errors.js";
import { now } from "../../metrics/trace.js";
import { ensurePiselStages } from "../derived-forms.js";
import { evictForm } from "../../cache/eviction.js";
import { verifyBytes, type CheckedFile } from "../../cache/integrity.js";
import type { MiniLoaderEntry } from "../../cache/miniloader-entry.js";
import type { StageSlot } from "../model/stage-slot.js";
import { SESSION_CONFIGS } from "../strategy.js";
import { BaseLoader, type LoaderContext } from "./loader.js";
import { UnitTasks } from "./unit-tasks.js";
import { verifiedEntry } from "./verified-entry.js";

/** A stage loader run in stage order; `build` makes stage i's session (its L). */
abstract class SequentialLoader extends BaseLoader {
  constructor(protected readonly ctx: LoaderContext) {
    super();
  }

  protected abstract build(slot: StageSlot): Promise<void>;

  start(slots: readonly StageSlot[]): Promise<void>[] {
    const tasks = new UnitTasks(this.ctx.options.hazard ?? DEFAULTS.hazard);
    return slots.map((slot) => {
      const L = { unit: "L" as const, stage: slot.index };
      return tasks.set(
        L,
        tasks.after(L).then(() => this.build(slot)),
      );
    });
  }
}

/** pisel: PISeL's self-contained stage files, read whole and verified; a corrupt form is rebuilt once per load. */
export class PiselLoader extends SequentialLoader {
  private files: Promise<CheckedFile[]> | undefined;
  private rebuilt = false;

  protected async build(slot: StageSlot): Promise<void> {
    const r0 = now();
    const bytes = await this.readStageFile(slot.index);
    this.ctx.sessions.record("R", slot.index, "main", r0, now(), bytes.byteLength);
    await this.ctx.sessions.create(slot, "L", { bytes }, SESSION_CONFIGS.stageFromWeights, bytes.byteLength);
  }

  reload(slot: StageSlot): Promise<void> {
    return this.ctx.sessions.createFromBundle(slot, "A", slot.index);
  }

  /** The stage file's bytes, verified: what onnxruntime parses is what was checked. */
  private async readStageFile(index: number): Promise<Uint8Array> {
    const { bundle, runtime } = this.ctx;
    this.files ??= ensurePiselStages(bundle, runtime.cacheRoot);
    const file = (await this.files)[index]!;
    const bytes = await readFile(file.path);
    try {
      verifyBytes(file, bytes);
      return bytes;
    } catch (e) {
      if (this.rebuilt || !isCicadaError(e)) throw e;
      this.rebuilt = true;
      await evictForm(file);
      this.files = ensurePiselStages(bundle, runtime.cacheRoot);
      return this.readStageFile(index);
    }
  }
}

/** mini: MiniLoader's optimised stages, created by path (weights mapped). */
export class MappedStagesLoader extends SequentialLoader {
  private entry: Promise<MiniLoaderEntry> | undefined;

  protected async build(slot: StageSlot): Promise<void> {
    this.entry ??= verifiedEntry(this.ctx.bundle, this.ctx.runtime.cacheRoot);
    await this.ctx.sessions.createFromEntry(slot, "L", (await this.entry).stages[slot.index]!);
  }

  async reload(slot: StageSlot): Promise<void> {
    const entry = await verifiedEntry(this.ctx.bundle, this.ctx.runtime.cacheRoot);
    await this.ctx.sessions.createFromEntry(slot, "A", entry.stages[slot.index]!);
  }

  /** A stage of an entry that failed its check was never created, and the entry is gone: rebuilt. */
  override rebuilds(error: unknown): boolean {
    return isCicadaError(error, "E_BUNDLE_CHECKSUM");
  }
}
