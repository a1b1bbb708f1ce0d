// The only strategy switch of the runtime: which plan a load runs (choosePlan), which loader makes its
// stages (loaderFor) and which files its cold start reads (filesRead). Adding a strategy is a row here and,
// when it loads differently from every family, one loader file.
import { join } from "node:path";
import type { StrategyName } from "../../config.js";
import { CicadaError } from "../../errors.js";
import { openBundle, type Bundle } from "../../format/bundle.js";
import { ensureOrtBestModel, ensurePiselStages, sourceModelOf } from "../derived-forms.js";
import { ensureOptimizedStages, findOptimizedStages } from "../miniloader/ensure.js";
import { getsWholeGraph, plannedForm, wholeModelMaxBytes } from "../miniloader/plan.js";
import type { MiniLoaderEntry } from "../../cache/miniloader-entry.js";
import type { LoadOptions, PlanName } from "../model/model-api.js";
import { COPY_FACTOR, type MemoryProfile } from "../memory-budget.js";
import type { Runtime } from "../runtime.js";
import { COMPONENTS } from "../strategy.js";
import { DecoupledLoader } from "./decoupled.js";
import type { Loader, LoaderContext } from "./loader.js";
import { MappedWholeLoader } from "./mapped-whole.js";
import { MappedStagesLoader, PiselLoader } from "./sequential.js";
import { mergedBundleLoader, ortBestLoader, sourceLoader } from "./whole.js";

/** A load's plan, and what choosing it found: MiniLoader's entry, or the build to run after the first answer. */
export interface Planned {
  plan: PlanName;
  entry?: MiniLoaderEntry;
  build?: () => Promise<void>;
}

/** The loader of each strategy for its plan; `planned.build` set means MiniLoader's cache is not built yet. */
export function loaderFor(ctx: LoaderContext, planned: Planned): Loader {
  const cached = planned.build === undefined;
  switch (ctx.options.strategy) {
    case "eager":
      return sourceLoader(ctx);
    case "ort-best":
      return ortBestLoader(ctx);
    case "pisel":
      return new PiselLoader(ctx);
    case "mini":
      return new MappedStagesLoader(ctx);
    case "preload":
      return new DecoupledLoader(ctx, false, "priority");
    case "cicada":
      if (planned.plan === "pipeline") return new DecoupledLoader(ctx, cached, "priority");
      return cached ? new MappedWholeLoader(ctx, planned.entry) : mergedBundleLoader(ctx);
  }
}

/**
 * How a strategy's load uses memory for its plan: the weights it copies (eager parses the source; pisel,
 * preload and cicada before its cache is built build sessions from bytes) or maps (ort-best, mini, cicada),
 * and whether it can go stage by stage.
 */
export function memoryProfileOf(strategy: StrategyName, planned: Planned): MemoryProfile {
  const pipeline = planned.plan === "pipeline";
  switch (strategy) {
    case "eager":
      return { factor: COPY_FACTOR.parse, canStream: false };
    case "ort-best":
      return { factor: COPY_FACTOR.none, canStream: false };
    case "pisel":
    case "preload":
      return { factor: COPY_FACTOR.build, canStream: true };
    case "mini":
      return { factor: COPY_FACTOR.none, canStream: true };
    case "cicada":
      return { factor: planned.build ? COPY_FACTOR.build : COPY_FACTOR.none, canStream: pipeline };
  }
}

/** The planner's rule for cicada: the whole graph unless the pipeline is asked for or there is none. */
function runsWhole(entry: MiniLoaderEntry, asked: "auto" | PlanName): boolean {
  return asked !== "pipeline" && entry.whole !== undefined;
}

/** The plan of a load (see LoadOptions.plan). */
export async function choosePlan(runtime: Runtime, bundle: Bundle, options: LoadOptions): Promise<Planned> {
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
      await ensureOptimizedStages(bundle, runtime.cacheRoot, { forms: [plannedForm(bundle)] });
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

/** The external-data files a model file names (resolved beside it). */
async function externalFilesOf(modelPath: string): Promise<string[]> {
  const onnx = await import("../../format/onnx-io.js");
  const { model, dir } = await onnx.readOnnxFile(modelPath);
  const files = new Set<string>();
  for (const t of model.graph?.initializer ?? []) {
    if (onnx.isExternal(t)) files.add(join(dir, onnx.externalLocation(t, modelPath).location));
  }
  return [...files];
}

/**
 * Paths of what a strategy's cold start reads (for the benchmark's page-cache control), building the
 * forms it needs; for cicada, with `plan` (default auto: the whole-model graph when MiniLoader has one).
 */
export async function filesRead(
  runtime: Runtime,
  bundleDir: string,
  strategy: StrategyName,
  plan: "auto" | PlanName = "auto",
): Promise<string[]> {
  const bundle = await openBundle(bundleDir);
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
      return [bundle.weightsPath, ...bundle.manifest.stages.map((s) => `${bundle.dir}/${s.file}`)];
    case "mini":
    case "cicada": {
      // Only the form the load will use: a model costs its bundle and one more copy of its weights.
      const form =
        strategy === "mini" || plan === "pipeline"
          ? "stages"
          : plan === "whole"
            ? "whole"
            : plannedForm(bundle);
      const { entry } = await ensureOptimizedStages(bundle, runtime.cacheRoot, { forms: [form] });
      const graphs = form === "whole" ? [entry.whole!] : entry.stages;
      return graphs.flatMap((s) => [s.modelPath, s.dataPath]);
    }
  }
}
