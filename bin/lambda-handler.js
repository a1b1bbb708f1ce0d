// AWS Lambda entry point (Node.js 20 runtime; handler "bin/lambda-handler.handler"; the project with its
// production node_modules as the deployment package or container image). The instance starts here, in
// Lambda's init phase: runtime threads, bundles opened and prepared; each invocation then pays only its
// model's cold start. Configuration by environment: CICADA_BUNDLES (comma-separated bundle directories),
// CICADA_STRATEGY, CICADA_STATELESS, CICADA_TIMEOUT_MS, … (src/serve/lambda-adapter.ts), and
// CICADA_CACHE=/tmp/cicada-cache (/tmp is Lambda's only writable path).
import { register } from "tsx/esm/api";
import { fileURLToPath, pathToFileURL } from "node:url";
import { dirname, join } from "node:path";

register();
const root = dirname(dirname(fileURLToPath(import.meta.url)));
const adapter = await import(pathToFileURL(join(root, "src", "serve", "lambda-adapter.ts")).href);
export const handler = await adapter.createLambdaFunction(adapter.instanceOptionsFromEnv());
