// AWS Lambda entry point (Node.js 20 runtime; handler "bin/lambda-handler.handler"; the package, built, with
// its production node_modules as the deployment package or container image). The instance starts here, in
// Lambda's init phase: runtime threads, bundles opened and prepared; each invocation then pays only its
// model's cold start. Configuration by environment: CICADA_BUNDLES (comma-separated bundle directories),
// CICADA_STRATEGY, CICADA_STATELESS, CICADA_TIMEOUT_MS, … (src/serve/function/lambda-adapter.ts), and
// CICADA_CACHE=/tmp/cicada-cache (/tmp is Lambda's only writable path). It runs the compiled JavaScript
// under dist/ (`npm run build`).
import { createLambdaFunction, instanceOptionsFromEnv } from "../dist/serve/function/lambda-adapter.js";

export const handler = await createLambdaFunction(instanceOptionsFromEnv());
