// `cicada-node/serve`: function instances (the Open Inference Protocol over node:http or AWS Lambda), the
// platform (gateway, instance pool, policies, memory limits) and trace replay. Kept out of the main entry
// so that a function that only loads and runs a model does not load the server, its validation schemas or
// the platform.
export {
  startInstance,
  INSTANCE_DEFAULTS,
  type FunctionInstance,
  type InstanceOptions,
} from "./function-instance.js";
export { createInferenceServer, type InferenceServer } from "./inference-protocol.js";
export { listen, type NodeServer } from "./node-adapter.js";
export { createLambdaFunction, lambdaHandler, instanceOptionsFromEnv } from "./lambda-adapter.js";
export { startPlatform, type Platform, type PlatformOptions } from "./platform.js";
export { POLICIES, createPolicy, type Policy, type PolicyName } from "./policies.js";
export { readAzureTrace } from "./trace-azure.js";
export { syntheticTrace } from "./trace-synthetic.js";
export { arrivalsOf, cutTrace, type Arrival, type InvocationTrace } from "./trace-invocations.js";
export { runReplays, type ReplayConfig, type ReplayResult } from "./replay-run.js";
