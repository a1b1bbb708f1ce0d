// The public API, `import … from "cicada-node"`: load a bundle with a strategy and run it. This entry is on
// the path of every cold start, so it exports only what loading and running a model needs; serving, the
// platform and trace replay are in `cicada-node/serve`, the importer, the zoo and the reference runners
// in `cicada-node/tools`, and each loads only when imported.
export { createRuntime, type Runtime, type RuntimeOptions } from "./runtime/runtime.js";
export { defaultCacheRoot } from "./config.js";
export {
  loadModel,
  prepareModel,
  filesRead,
  type LoadedModel,
  type LoadOptions,
  type ModelRun,
  type PlanName,
  type RunOptions,
} from "./runtime/load-model.js";
export { STRATEGIES, isStrategy, type StrategyName } from "./config.js";
export { COMPONENTS } from "./runtime/strategy.js";
export type { HostTensor } from "./runtime/host-tensor.js";
export { randomInputs, validateInputs, tensorsFromJson } from "./runtime/model-inputs.js";
export { openBundle, type Bundle } from "./format/bundle.js";
export type { Manifest } from "./format/manifest.js";
export { utilization, unitTimes, type Trace, type TraceEvent, type Unit } from "./metrics/trace.js";
export { similarity } from "./metrics/similarity.js";
export { CicadaError, ERROR_CODES, isCicadaError, type ErrorCode } from "./errors.js";
