// `cicada-node/serve`: function instances (serve/function/: the Open Inference Protocol over node:http or
// AWS Lambda), the platform (serve/platform/: gateway, instance pool, policies, memory limits, replay
// experiments) and the workload a replay sends (src/workload/: traces, arrivals). Kept out of the main entry
// so that a function that only loads and runs a model does not load the server, its validation schemas or
// the platform.
export {
  startInstance,
  INSTANCE_DEFAULTS,
  type FunctionInstance,
  type InstanceOptions,
} from "./function/function-instance.js";
export { createInferenceServer, type InferenceServer } from "./function/inference-protocol.js";
export { listen, type NodeServer } from "./function/node-adapter.js";
export { createLambdaFunction, lambdaHandler, instanceOptionsFromEnv } from "./function/lambda-adapter.js";
export { startPlatform, type Platform, type PlatformOptions } from "./platform/platform.js";
export { createPolicy, type Policy } from "./platform/policies.js";
export { POLICIES, type PolicyName } from "../workload/replay-runs.js";
export { readAzureTrace } from "../workload/trace-azure.js";
export { syntheticTrace } from "../workload/trace-synthetic.js";
export { arrivalsOf, cutTrace, type Arrival, type InvocationTrace } from "../workload/trace-invocations.js";
export { runReplays, type ReplayConfig, type ReplayResult } from "./platform/replay-experiment.js";
