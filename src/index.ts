// The public API: load a bundle with a strategy and run it, import models, generate zoo models.
export { createRuntime, defaultCacheRoot, type Runtime, type RuntimeOptions } from "./runtime/runtime.js";
export {
  loadModel,
  prepareModel,
  filesRead,
  type LoadedModel,
  type LoadOptions,
  type ModelRun,
  type RunOptions,
} from "./runtime/load-model.js";
export { STRATEGIES, COMPONENTS, isStrategy, type StrategyName } from "./runtime/strategy.js";
export type { HostTensor } from "./runtime/host-tensor.js";
export { randomInputs, validateInputs, tensorsFromJson } from "./runtime/model-inputs.js";
export { runEager, runSequential, type ProbeTensor } from "./runtime/reference-runner.js";
export { importModel, type ImportOptions } from "./importer/import-model.js";
export { openBundle, type Bundle } from "./format/bundle.js";
export type { Manifest } from "./format/manifest.js";
export { ZOO, findZooModel, generateZooModel } from "./zoo/registry.js";
export { utilization, unitTimes, type Trace, type TraceEvent, type Unit } from "./metrics/trace.js";
export { ganttSvg } from "./metrics/gantt.js";
export { similarity } from "./metrics/similarity.js";
export { CicadaError, ERROR_CODES, isCicadaError, type ErrorCode } from "./errors.js";
export {
  startInstance,
  INSTANCE_DEFAULTS,
  type FunctionInstance,
  type InstanceOptions,
} from "./serve/function-instance.js";
export { createInferenceServer, type InferenceServer } from "./serve/inference-protocol.js";
export { listen, type NodeServer } from "./serve/node-adapter.js";
export { createLambdaFunction, lambdaHandler, instanceOptionsFromEnv } from "./serve/lambda-adapter.js";
export { startPlatform, type Platform, type PlatformOptions } from "./serve/platform.js";
export { POLICIES, createPolicy, type Policy, type PolicyName } from "./serve/policies.js";
export { readAzureTrace } from "./serve/trace-azure.js";
export { syntheticTrace } from "./serve/trace-synthetic.js";
export { arrivalsOf, cutTrace, type Arrival, type InvocationTrace } from "./serve/trace-invocations.js";
export { runReplays, type ReplayConfig, type ReplayResult } from "./serve/replay-run.js";
