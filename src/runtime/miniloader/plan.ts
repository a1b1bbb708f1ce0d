// Which of MiniLoader's forms a bundle gets: the stage graphs (the pipeline's) always can be built; the
// whole-model graph only for models small enough that building it fits in memory. Each form's data files
// are a copy of the weights, so the cache holds only the forms a caller asks for (issue 12: a model costs
// its bundle plus at most one more copy of its weights). A caller that does not say which it runs gets
// both forms the bundle can get: what the runtime's loaders need as long as they do not pass their form
// (measured on resnet50, 102.4 MB of weights: bundle + cache 3.00x the weights with both forms, 2.00x with
// the whole graph alone).
import { totalmem } from "node:os";
import type { Bundle } from "../../format/bundle.js";
import type { MiniLoaderForm } from "../../cache/miniloader-entry.js";

/**
 * Largest model (weight bytes) that also gets a whole-model optimised graph: a quarter of this machine's
 * memory, at most 8 GiB. NOTE: building it holds the weights in memory about three times (the merged
 * stages', onnxruntime's copy and its optimiser's rewrites; opt-1.3b's 4.9 GiB: 16 GiB peak, 106 s).
 * Larger models run the stage pipeline, which builds one stage at a time.
 */
export function wholeModelMaxBytes(): number {
  return Math.min(8 * 2 ** 30, Math.floor(totalmem() / 4));
}

/** Whether MiniLoader builds `bundle` a whole-model graph (see {@link wholeModelMaxBytes}). */
export function getsWholeGraph(bundle: Bundle): boolean {
  return bundle.manifest.totalWeightBytes <= wholeModelMaxBytes();
}

/**
 * The form cicada's planner runs `bundle` from when its plan is `auto`: the whole graph when the model
 * gets one, else the stages. What `cicada prepare` builds for cicada.
 */
export function plannedForm(bundle: Bundle): MiniLoaderForm {
  return getsWholeGraph(bundle) ? "whole" : "stages";
}

/**
 * The forms to hold for a caller that needs `asked` (default: every form the bundle can get, for callers
 * that do not say which they will use). A whole graph asked of a model too large for one is left out.
 */
export function formsFor(bundle: Bundle, asked?: readonly MiniLoaderForm[]): MiniLoaderForm[] {
  const whole = getsWholeGraph(bundle);
  const wanted = asked ?? ["stages", "whole"];
  const forms = wanted.filter((f) => f === "stages" || whole);
  // A model too large for a whole graph is run as a pipeline: its stages stand in for it.
  return forms.length ? [...new Set(forms)] : ["stages"];
}
