// The whole-model loaders whose one construction binds the weights itself (L, no R or A of ours): eager
// (the source model with onnxruntime's default options, what a Node.js user does today), ort-best (the
// optimised graph onnxruntime saved once, its weights mapped) and the bundle's own stages merged into one
// session (cicada's first cold start while its cache is not built yet).
import { sourceModelOf, ensureOrtBestModel } from "../derived-forms.js";
import { verifyForm } from "../../cache/forms.js";
import type { StageSlot } from "../model/stage-slot.js";
import { SESSION_CONFIGS } from "../strategy.js";
import { BaseLoader, type Loader, type LoaderContext } from "./loader.js";

/** A loader of one session that `build` makes (given, or a subclass's); a reload builds it again. */
export class WholeLoader extends BaseLoader {
  constructor(private readonly make?: (slot: StageSlot) => Promise<void>) {
    super();
  }

  protected build(slot: StageSlot): Promise<void> {
    return this.make!(slot);
  }

  start(slots: readonly StageSlot[]): Promise<void>[] {
    return [this.build(slots[0]!)];
  }

  reload(slot: StageSlot): Promise<void> {
    return this.build(slot);
  }
}

/** eager: InferenceSession.create(model.onnx) with default options. */
async function createFromSource(ctx: LoaderContext, slot: StageSlot): Promise<void> {
  const path = await sourceModelOf(ctx.bundle, ctx.runtime.cacheRoot);
  await ctx.sessions.create(slot, "L", { path }, SESSION_CONFIGS.eager);
}

/** eager's loader. */
export function sourceLoader(ctx: LoaderContext): Loader {
  return new WholeLoader((slot) => createFromSource(ctx, slot));
}

/** ort-best's loader: its saved model mapped, or the source when onnxruntime cannot read its own save. */
export function ortBestLoader(ctx: LoaderContext): Loader {
  return new WholeLoader(async (slot) => {
    const files = await ensureOrtBestModel(ctx.bundle, ctx.runtime.cacheRoot);
    await verifyForm(files);
    const paths = files.map((f) => f.path);
    await ctx.sessions.createOrBypass(
      slot,
      paths[0]!,
      () => ctx.sessions.createMapped(slot, "L", paths),
      () => createFromSource(ctx, slot),
    );
  });
}

/** The bundle's own stages merged into one session, built from weights read and verified on the way. */
export function mergedBundleLoader(ctx: LoaderContext): Loader {
  return new WholeLoader((slot) => ctx.sessions.createWholeFromBundle(slot, "A"));
}
