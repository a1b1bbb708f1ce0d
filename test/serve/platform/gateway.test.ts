// The gateway over real instance processes on loopback: the protocol's endpoints, an infer round trip
// equal to eager (cold, then warm on the same instance), and the errors a client meets at the gateway.
import { test } from "node:test";
import assert from "node:assert/strict";
import { openBundle } from "../../../src/format/bundle.js";
import { similarity } from "../../../src/metrics/similarity.js";
import { randomInputs } from "../../../src/runtime/model-inputs.js";
import { runEager } from "../../../src/runtime/reference-runner.js";
import type { Platform } from "../../../src/serve/platform/platform.js";
import { infer, testPlatform, tinyBundles } from "./platform-fixtures.js";

const fx = await tinyBundles("cicada-gateway-");
const platform: Platform = await testPlatform(fx.root, [fx.resnet, fx.opt], {
  instances: 2,
  maxBodyBytes: 1 << 20,
});
test.after(async () => {
  await platform.close();
  await fx.cleanup();
});
const url = platform.url;

/** The outputs of a binary infer response: header JSON, then each binary output's bytes. */
async function binaryOutputs(r: Response): Promise<Record<string, Float32Array>> {
  const body = new Uint8Array(await r.arrayBuffer());
  const n = Number(r.headers.get("inference-header-content-length"));
  const head = JSON.parse(new TextDecoder().decode(body.subarray(0, n))) as {
    outputs: { name: string; parameters: { binary_data_size: number } }[];
  };
  const out: Record<string, Float32Array> = {};
  let at = n;
  for (const o of head.outputs) {
    const size = o.parameters.binary_data_size;
    out[o.name] = new Float32Array(body.slice(at, at + size).buffer);
    at += size;
  }
  return out;
}

test("infer through the gateway: cold then warm on the same instance, equal to eager", async () => {
  const { manifest } = await openBundle(fx.resnet);
  const eager = await runEager(manifest.model.source, randomInputs(manifest.inputs, 0));
  const cold = await infer(url, fx.resnet);
  assert.equal(cold.status, 200, await cold.clone().text());
  assert.equal(cold.headers.get("x-cicada-cold"), "1");
  assert.match(cold.headers.get("server-timing") ?? "", /load;dur=/);
  assert.ok(Number(cold.headers.get("x-cicada-queue-ms")) >= 0);
  const first = cold.headers.get("x-cicada-instance");
  const outputs = await binaryOutputs(cold);
  for (const [name, expected] of Object.entries(eager.outputs)) {
    const s = similarity(outputs[name]!, expected.data);
    assert.ok(s.cosine >= 0.99999, `${name}: cosine ${s.cosine}`);
  }
  const warm = await infer(url, fx.resnet);
  assert.equal(warm.status, 200);
  assert.equal(warm.headers.get("x-cicada-cold"), "0");
  assert.equal(warm.headers.get("x-cicada-instance"), first, "routed to the instance that has it loaded");
  await warm.arrayBuffer();
  const index = (await (await fetch(`${url}/v2/repository/index`, { method: "POST" })).json()) as {
    name: string;
    state: string;
  }[];
  assert.deepEqual(
    index.map((m) => [m.name, m.state]),
    [
      ["tiny-resnet", "READY"],
      ["tiny-opt", "UNAVAILABLE"],
    ],
  );
  const state = (await (await fetch(`${url}/v2/cicada/platform`)).json()) as {
    policy: string;
    receiving: number;
    receivingBytes: number;
    maxReceivingBytes: number;
    instances: { id: string; state: string; served: number; memory: { pssBytes: number } | null }[];
  };
  assert.equal(state.policy, "keep-alive");
  // The budget of bodies being received: 4 x --max-body-bytes by default, nothing held between requests.
  assert.deepEqual([state.receiving, state.receivingBytes, state.maxReceivingBytes], [0, 0, 4 << 20]);
  const served = state.instances.find((i) => i.id === first)!;
  assert.equal(served.state, "idle");
  assert.equal(served.served, 2);
  assert.ok(
    state.instances.every((i) => (i.memory?.pssBytes ?? 0) > 10 << 20),
    "memory sampled from /proc",
  );
});

test("the protocol's metadata endpoints answer at the gateway", async () => {
  const server = (await (await fetch(`${url}/v2`)).json()) as { name: string; extensions: string[] };
  assert.equal(server.name, "cicada-platform");
  assert.ok(server.extensions.includes("cicada") && server.extensions.includes("model_repository"));
  assert.equal((await fetch(`${url}/v2/health/live`)).status, 200);
  assert.equal((await fetch(`${url}/v2/health/ready`)).status, 200);
  const meta = (await (await fetch(`${url}/v2/models/tiny-opt`)).json()) as {
    name: string;
    platform: string;
    inputs: { datatype: string }[];
  };
  assert.equal(meta.name, "tiny-opt");
  assert.equal(meta.platform, "onnxruntime_onnx");
  assert.equal(meta.inputs[0]!.datatype, "INT64");
  assert.equal((await fetch(`${url}/v2/models/tiny-opt/ready`)).status, 200);
  assert.equal((await fetch(`${url}/v2/models/tiny-opt/versions/1/ready`)).status, 200);
});

test("errors at the gateway: unknown model and route (404), method (405), bad body (400), too large (413)", async () => {
  const cases: [string, RequestInit, number, string, RegExp][] = [
    [
      "/v2/models/nope/infer",
      { method: "POST", body: "{}" },
      404,
      "E_MODEL_UNKNOWN",
      /no served model is named 'nope'.*tiny-resnet/,
    ],
    ["/v2/nowhere", {}, 404, "E_ROUTE_UNKNOWN", /no endpoint GET \/v2\/nowhere/],
    [
      "/v2/models/tiny-resnet/infer",
      { method: "GET" },
      405,
      "E_METHOD_NOT_ALLOWED",
      /infer takes POST, not GET/,
    ],
    [
      "/v2/models/tiny-resnet/infer",
      { method: "POST", body: "{not json" },
      400,
      "E_REQUEST",
      /not valid JSON/,
    ],
    [
      "/v2/models/tiny-resnet/infer",
      {
        method: "POST",
        body: JSON.stringify({ inputs: [{ name: "x", shape: [1], datatype: "FP32", data: [1] }] }),
      },
      400,
      "E_INPUT_NAME",
      /x/,
    ],
    [
      "/v2/models/tiny-resnet/infer",
      { method: "POST", body: new Uint8Array(2 << 20) },
      413,
      "E_BODY_TOO_LARGE",
      /--max-body-bytes/,
    ],
  ];
  for (const [path, init, status, code, message] of cases) {
    const r = await fetch(`${url}${path}`, init);
    const body = (await r.json()) as { error: string; code: string };
    assert.equal(r.status, status, `${path}: ${body.error}`);
    assert.match(body.error, message, path);
    // Coded like an instance's errors: the code in the body and in the header, whoever answered.
    assert.equal(body.code, code, `${path}: ${body.error}`);
    assert.equal(r.headers.get("x-cicada-error"), code, path);
    // A 405 names the path's methods, as an instance's does.
    if (status === 405) assert.equal(r.headers.get("allow"), "POST", path);
  }
  // A failed request leaves the instances usable.
  const after = await infer(url, fx.opt);
  assert.equal(after.status, 200);
  await after.arrayBuffer();
});
