// The Lambda adapter in-process: events of the real payload-format-2.0 shape (as an HTTP API or a function
// URL sends them) through the same core over a real tiny model; JSON and base64 binary bodies both ways;
// the environment configuration and a malformed event refused with the field it names; unknown methods 405.
import { after, test } from "node:test";
import assert from "node:assert/strict";
import { rm } from "node:fs/promises";
import { isCicadaError } from "../../../src/errors.js";
import { openBundle } from "../../../src/format/bundle.js";
import { randomInputs } from "../../../src/runtime/model-inputs.js";
import { runEager } from "../../../src/runtime/reference-runner.js";
import { createLambdaFunction, instanceOptionsFromEnv } from "../../../src/serve/function/lambda-adapter.js";
import {
  assertMatchesEager,
  binaryRequest,
  jsonRequest,
  tinyBundles,
  type InferJson,
} from "./serve-fixtures.js";

const fx = await tinyBundles("lambda", { "tiny-opt": 2 });
const bundle = fx.bundles["tiny-opt"]!;
const { manifest } = await openBundle(bundle);
const handler = await createLambdaFunction({
  ...instanceOptionsFromEnv({ CICADA_BUNDLES: bundle, CICADA_WORKERS: "1", CICADA_STRATEGY: "cicada" }),
  cacheRoot: fx.cache,
});
after(async () => {
  await handler.instance.close();
  await rm(fx.root, { recursive: true, force: true });
});

/** An event as a Lambda function URL delivers it. */
function event(
  method: string,
  rawPath: string,
  body?: { text: string; base64: boolean },
  headers: Record<string, string> = {},
) {
  return {
    version: "2.0",
    routeKey: "$default",
    rawPath,
    rawQueryString: "",
    headers: { "content-type": "application/json", host: "abc123.lambda-url.eu-west-1.on.aws", ...headers },
    requestContext: {
      accountId: "anonymous",
      apiId: "abc123",
      domainName: "abc123.lambda-url.eu-west-1.on.aws",
      domainPrefix: "abc123",
      http: { method, path: rawPath, protocol: "HTTP/1.1", sourceIp: "203.0.113.9", userAgent: "test" },
      requestId: "0f1e2d3c",
      routeKey: "$default",
      stage: "$default",
      time: "01/Dec/2026:12:00:00 +0000",
      timeEpoch: 1796126400000,
    },
    ...(body ? { body: body.text, isBase64Encoded: body.base64 } : { isBase64Encoded: false }),
  };
}

const feeds = randomInputs(manifest.inputs, 9);
const eager = (await runEager(manifest.model.source, feeds)).outputs;
const path = `/v2/models/${manifest.model.name}/infer`;

test("metadata and JSON inference through Lambda events equal eager, cold then warm", async () => {
  const meta = await handler(event("GET", `/v2/models/${manifest.model.name}`));
  assert.equal(meta.statusCode, 200);
  assert.equal(meta.isBase64Encoded, false);
  assert.equal((JSON.parse(meta.body) as { platform: string }).platform, "onnxruntime_onnx");
  for (const cold of [true, false]) {
    const r = await handler(event("POST", path, { text: jsonRequest(feeds), base64: false }));
    assert.equal(r.statusCode, 200, r.body);
    assert.equal(r.headers["x-cicada-cold"], cold ? "1" : "0");
    const body = JSON.parse(r.body) as InferJson;
    assert.equal(body.parameters.cicada_cold, cold);
    assertMatchesEager(body.outputs[0]!.data!, eager.logits!, "lambda JSON");
  }
});

test("binary tensors travel base64-encoded both ways", async () => {
  const { body, headerLength } = binaryRequest(feeds, { binary_data_output: true });
  const r = await handler(
    event(
      "POST",
      path,
      { text: body.toString("base64"), base64: true },
      {
        "content-type": "application/octet-stream",
        "inference-header-content-length": String(headerLength),
      },
    ),
  );
  assert.equal(r.statusCode, 200);
  assert.equal(r.isBase64Encoded, true);
  const bytes = Buffer.from(r.body, "base64");
  const jsonLength = Number(r.headers["inference-header-content-length"]);
  const logits = new Float32Array(new Uint8Array(bytes.subarray(jsonLength)).buffer);
  assertMatchesEager(logits, eager.logits!, "lambda binary");
});

test("a malformed event or request answers 400; a bad environment is refused naming the variable", async () => {
  const notV2 = await handler({ ...event("GET", "/v2"), version: "1.0" });
  assert.equal(notV2.statusCode, 400);
  assert.match(notV2.body, /Lambda event .*field 'version'/);
  const noMethod = await handler({ ...event("GET", "/v2"), requestContext: {} });
  assert.match(noMethod.body, /field 'requestContext\.http'/);
  const badJson = await handler(event("POST", path, { text: "{", base64: false }));
  assert.equal(badJson.statusCode, 400);
  assert.equal(badJson.headers["x-cicada-error"], "E_REQUEST");
  assert.equal((JSON.parse(badJson.body) as { code: string }).code, "E_REQUEST");
  // Methods a Request cannot carry, or none of the server's: 405 with Allow (TRACE was a 500).
  for (const method of ["TRACE", "PATCH"]) {
    const r = await handler(event(method, path));
    assert.equal(r.statusCode, 405, r.body);
    assert.equal(r.headers.allow, "POST");
    assert.equal(r.headers["x-cicada-error"], "E_METHOD_NOT_ALLOWED");
  }
  const badHeader = await handler(event("GET", "/v2", undefined, { "bad header": "x" }));
  assert.equal(badHeader.statusCode, 400, badHeader.body);
  assert.match(badHeader.body, /field 'headers'/);
  assert.throws(
    () => instanceOptionsFromEnv({}),
    (e) => isCicadaError(e, "E_USAGE") && /CICADA_BUNDLES/.test(e.message),
  );
  assert.throws(
    () => instanceOptionsFromEnv({ CICADA_BUNDLES: "a", CICADA_STRATEGY: "warp" }),
    (e) => isCicadaError(e, "E_USAGE") && /CICADA_STRATEGY: .*"cicada"/.test(e.message),
  );
  assert.throws(
    () => instanceOptionsFromEnv({ CICADA_BUNDLES: "a", CICADA_MAX_QUEUE: "-3" }),
    (e) => isCicadaError(e, "E_USAGE") && /CICADA_MAX_QUEUE/.test(e.message),
  );
  const o = instanceOptionsFromEnv({
    CICADA_BUNDLES: "a, b",
    CICADA_STATELESS: "true",
    CICADA_TIMEOUT_MS: "900",
  });
  assert.deepEqual([o.bundles, o.stateless, o.timeoutMs, o.strategy], [["a", "b"], true, 900, "cicada"]);
});
