// The function server end to end: a real `cicada serve` process on loopback, driven over HTTP. Inference
// equals eager on the original model (JSON and binary tensors, cold then warm); bad and hostile requests
// get the protocol's statuses with coded JSON; a full queue answers 429 and a late request 504: requests
// are held open by sending their body in two parts, and a request's own deadline is shortened to 1 ms;
// twenty slow senders hold no queue place and are cut off with 408 while a valid request is served.
import { after, before, test } from "node:test";
import assert from "node:assert/strict";
import { rm } from "node:fs/promises";
import { openBundle } from "../../../src/format/bundle.js";
import type { Manifest } from "../../../src/format/manifest.js";
import type { HostTensor } from "../../../src/runtime/host-tensor.js";
import { randomInputs } from "../../../src/runtime/model-inputs.js";
import { runEager } from "../../../src/runtime/reference-runner.js";
import {
  openRequest,
  rawExchange,
  startServer,
  stopAll,
  until,
  type ServerProcess,
} from "./server-process.js";
import {
  assertMatchesEager,
  binaryRequest,
  jsonRequest,
  tinyBundles,
  type InferJson,
} from "./serve-fixtures.js";

const fx = await tinyBundles("serve", { "tiny-resnet": 3, "tiny-opt": 2 });
const manifests: Record<string, Manifest> = {};
for (const [name, dir] of Object.entries(fx.bundles)) manifests[name] = (await openBundle(dir)).manifest;
let server: ServerProcess;

before(async () => {
  server = await startServer([
    fx.bundles["tiny-resnet"]!,
    fx.bundles["tiny-opt"]!,
    "--strategy",
    "cicada",
    "--max-queue",
    "1",
    "--max-body-bytes",
    "1000000",
    "--cache-root",
    fx.cache,
  ]);
});
after(async () => {
  await stopAll();
  await rm(fx.root, { recursive: true, force: true });
});

async function infer(model: string, body: string | Buffer, headers: Record<string, string> = {}) {
  return fetch(`${server.base}/v2/models/${model}/infer`, {
    method: "POST",
    headers: { "content-type": "application/json", ...headers },
    body,
  });
}

async function expectError(res: Response, status: number, code: string, pattern: RegExp): Promise<void> {
  const text = await res.text();
  assert.equal(res.status, status, text);
  assert.equal(res.headers.get("x-cicada-error"), code, text);
  const body = JSON.parse(text) as { error: string; code: string };
  assert.equal(body.code, code, text);
  assert.match(body.error, pattern);
}

async function reference(model: string, seed: number) {
  const feeds = randomInputs(manifests[model]!.inputs, seed);
  const eager = await runEager(manifests[model]!.model.source, feeds);
  return { feeds, eager: eager.outputs };
}

test("server metadata, health, model metadata and the repository index", async () => {
  const meta = (await (await fetch(`${server.base}/v2`)).json()) as { name: string; extensions: string[] };
  assert.equal(meta.name, "cicada");
  assert.deepEqual(meta.extensions, ["binary_tensor_data", "model_repository", "cicada"]);
  assert.equal((await fetch(`${server.base}/v2/health/live`)).status, 200);
  assert.equal((await fetch(`${server.base}/v2/health/ready`)).status, 200);
  const model = (await (await fetch(`${server.base}/v2/models/tiny-opt`)).json()) as Record<string, unknown>;
  // Symbolic dims (batch, sequence) are -1.
  assert.deepEqual(model, {
    name: "tiny-opt",
    versions: ["1"],
    platform: "onnxruntime_onnx",
    inputs: [{ name: "input_ids", datatype: "INT64", shape: [-1, -1] }],
    outputs: [{ name: "logits", datatype: "FP32", shape: [-1, -1, 256] }],
  });
  assert.deepEqual(manifests["tiny-opt"]!.inputs[0]!.shape, ["batch", "sequence"]);
  assert.equal((await fetch(`${server.base}/v2/models/tiny-opt/versions/1`)).status, 200);
  await expectError(
    await fetch(`${server.base}/v2/models/tiny-opt/versions/2`),
    404,
    "E_MODEL_UNKNOWN",
    /version '2'/,
  );
  const index = await fetch(`${server.base}/v2/repository/index`, { method: "POST" });
  assert.deepEqual(await index.json(), [
    { name: "tiny-resnet", version: "1", state: "UNAVAILABLE", reason: "" },
    { name: "tiny-opt", version: "1", state: "UNAVAILABLE", reason: "" },
  ]);
});

for (const model of ["tiny-resnet", "tiny-opt"]) {
  test(`${model}: infer over HTTP with strategy cicada equals eager, cold then warm`, async () => {
    const { feeds, eager } = await reference(model, 1);
    for (const expectCold of [true, false]) {
      const res = await infer(model, jsonRequest(feeds, { id: `r-${expectCold}` }));
      const body = (await res.json()) as InferJson;
      assert.equal(res.status, 200, JSON.stringify(body));
      assert.equal(res.headers.get("x-cicada-cold"), expectCold ? "1" : "0");
      assert.match(res.headers.get("server-timing")!, /E;dur=[\d.]+, total;dur=[\d.]+$/);
      assert.equal(body.model_name, model);
      assert.equal(body.id, `r-${expectCold}`);
      const p = body.parameters;
      assert.equal(p.cicada_cold, expectCold);
      assert.equal(p.cicada_strategy, "cicada");
      assert.equal(p.cicada_load_ms === null, !expectCold);
      assert.ok((p.cicada_latency_ms as number) > 0);
      assert.ok((p.cicada_utilization as number) > 0 && (p.cicada_utilization as number) <= 1);
      const units = JSON.parse(p.cicada_units as string) as Record<
        string,
        { workMs: number; waitMs: number }
      >;
      assert.deepEqual(Object.keys(units), ["L", "R", "A", "E"]);
      assert.ok(units.E!.workMs > 0);
      assert.equal(units.A!.workMs > 0, expectCold, "A (weight application) only in the cold request");
      for (const [name, expected] of Object.entries(eager)) {
        const out = body.outputs.find((o) => o.name === name)!;
        assert.deepEqual(out.shape, expected.dims);
        assertMatchesEager(out.data!, expected, `${model} ${name}`);
      }
    }
  });
}

test("binary tensor extension: binary inputs and outputs equal eager", async () => {
  const { feeds, eager } = await reference("tiny-resnet", 2);
  const { body, headerLength } = binaryRequest(feeds, { binary_data_output: true });
  const res = await infer("tiny-resnet", body, {
    "content-type": "application/octet-stream",
    "inference-header-content-length": String(headerLength),
  });
  const bytes = Buffer.from(await res.arrayBuffer());
  assert.equal(res.status, 200, bytes.toString());
  assert.equal(res.headers.get("content-type"), "application/octet-stream");
  const jsonLength = Number(res.headers.get("inference-header-content-length"));
  const head = JSON.parse(bytes.subarray(0, jsonLength).toString()) as InferJson;
  const out = head.outputs[0]!;
  assert.equal(out.name, "logits");
  assert.equal(out.data, undefined);
  assert.equal(out.parameters!.binary_data_size, bytes.byteLength - jsonLength);
  const logits = new Float32Array(
    bytes.buffer.slice(bytes.byteOffset + jsonLength, bytes.byteOffset + bytes.byteLength),
  );
  assertMatchesEager(logits, eager.logits!, "binary logits");
});

test("bad requests get 400, 404, 405 and 413 with an error naming the field; the model stays usable", async () => {
  const feeds = randomInputs(manifests["tiny-resnet"]!.inputs, 3);
  const good = jsonRequest(feeds);
  await expectError(await infer("tiny-resnet", "{ not json"), 400, "E_REQUEST", /not valid JSON/);
  await expectError(await infer("tiny-resnet", "{}"), 400, "E_REQUEST", /field 'inputs'/);
  const int64: Record<string, HostTensor> = {
    input: { dtype: "int64", dims: [1, 3, 64, 64], data: new BigInt64Array(3 * 64 * 64) },
  };
  await expectError(
    await infer("tiny-resnet", jsonRequest(int64)),
    400,
    "E_INPUT_DTYPE",
    /must be FP32, found INT64/,
  );
  const wrongShape: Record<string, HostTensor> = {
    input: { dtype: "float32", dims: [1, 3, 32, 128], data: new Float32Array(3 * 64 * 64) },
  };
  await expectError(
    await infer("tiny-resnet", jsonRequest(wrongShape)),
    400,
    "E_INPUT_SHAPE",
    /must have shape \[1,3,64,64\], found \[1,3,32,128\]/,
  );
  const wrongCount = JSON.parse(good) as { inputs: { data: number[] }[] };
  wrongCount.inputs[0]!.data.pop();
  await expectError(
    await infer("tiny-resnet", JSON.stringify(wrongCount)),
    400,
    "E_INPUT_SHAPE",
    /12287 values/,
  );
  const notNumber = JSON.parse(good) as { inputs: { data: unknown[] }[] };
  notNumber.inputs[0]!.data[5] = "x";
  await expectError(
    await infer("tiny-resnet", JSON.stringify(notNumber)),
    400,
    "E_REQUEST",
    /inputs\.0\.data\[5\]/,
  );
  const renamed = good.replace('"name":"input"', '"name":"image"');
  await expectError(await infer("tiny-resnet", renamed), 400, "E_INPUT_NAME", /no input 'image'/);
  await expectError(await infer("resnet9000", good), 404, "E_MODEL_UNKNOWN", /no model named 'resnet9000'/);
  await expectError(await fetch(`${server.base}/v2/nothing`), 404, "E_ROUTE_UNKNOWN", /no endpoint/);
  await expectError(
    await fetch(`${server.base}/v2/models/tiny-resnet/infer`),
    405,
    "E_METHOD_NOT_ALLOWED",
    /POST/,
  );

  // Oversize, declared: refused from the header, before any body byte is sent.
  const declared = openRequest(server.base, "/v2/models/tiny-resnet/infer", { "content-length": 2_000_000 });
  const r1 = await declared.response;
  declared.req.destroy();
  assert.equal(r1.status, 413, r1.body.toString());
  assert.match(r1.body.toString(), /2000000 bytes, larger than the server's limit of 1000000/);
  // Oversize, streamed without a length: counted while it arrives.
  const chunked = openRequest(server.base, "/v2/models/tiny-resnet/infer", {
    "transfer-encoding": "chunked",
  });
  let answered = false;
  void chunked.response.finally(() => (answered = true));
  const chunk = Buffer.alloc(64 * 1024, 32);
  for (let sent = 0; !answered && sent < 4_000_000; sent += chunk.length) {
    if (!chunked.req.write(chunk)) await new Promise((r) => setTimeout(r, 5));
  }
  const r2 = await chunked.response;
  chunked.req.destroy();
  assert.equal(r2.status, 413);
  assert.match(r2.body.toString(), /more than 1000000 bytes/);

  // Hostile, not malformed: unknown methods, deep nesting, numbers past a double, shapes past the limit.
  for (const method of ["TRACE", "PATCH", "FOO"]) {
    const r = await rawExchange(server.port, [
      `${method} /v2/models/tiny-resnet/infer HTTP/1.1\r\nHost: h\r\nConnection: close\r\n\r\n`,
    ]);
    assert.equal(r.status, 405, `${method}: ${r.body.toString()}`);
    assert.equal(r.headers.allow, "POST");
    assert.equal((JSON.parse(r.body.toString()) as { code: string }).code, "E_METHOD_NOT_ALLOWED");
  }
  const deep = good
    .replace('"data":[', `"data":${"[".repeat(10_001)}`)
    .replace(/\]\}\]\}$/, `${"]".repeat(10_000)}]}]}`);
  await expectError(
    await infer("tiny-resnet", deep),
    400,
    "E_REQUEST",
    /field 'inputs\.0\.data' nests deeper/,
  );
  await expectError(
    await infer("tiny-resnet", good.replace(/("data":\[)[^,]*/, "$11e400")),
    400,
    "E_REQUEST",
    /field 'inputs\.0\.data\[0\]': expected a finite FP32 number/,
  );
  const nested = JSON.parse(good) as { inputs: { data: unknown }[] };
  const flat = nested.inputs[0]!.data as number[];
  nested.inputs[0]!.data = [[flat.slice(0, 6144), flat.slice(6144)]];
  await expectError(
    await infer("tiny-resnet", JSON.stringify(nested)),
    400,
    "E_REQUEST",
    /field 'inputs\.0\.data\[0\]': .*needs 3 entries \(dimension 1\), found 2/,
  );
  await expectError(
    await infer("tiny-resnet", good.replace("[1,3,64,64]", "[1,3,64,64,0,1073741824]")),
    413,
    "E_INPUT_LIMIT",
    /dimension 1073741824 is larger than the server's limit/,
  );

  const ok = await infer("tiny-resnet", good);
  assert.equal(ok.status, 200, await ok.text());
});

test("NaN and Infinity travel as strings: accepted in float inputs, written so in outputs", async () => {
  const feeds = randomInputs(manifests["tiny-resnet"]!.inputs, 6);
  const request = JSON.parse(jsonRequest(feeds)) as { inputs: { data: unknown[] }[] };
  request.inputs[0]!.data = request.inputs[0]!.data.map(() => "NaN");
  const res = await infer("tiny-resnet", JSON.stringify(request));
  const text = await res.text();
  assert.equal(res.status, 200, text);
  const data = (JSON.parse(text) as InferJson).outputs[0]!.data as unknown[];
  assert.ok(data.length > 0 && data.every((v) => v === "NaN"), text.slice(0, 300));
  assert.doesNotMatch(text.slice(text.indexOf(`"outputs"`)), /null/);
});

test("a full queue answers 429; requests still sending their body hold no place; the admitted complete", async () => {
  // --max-queue 1: two requests admitted (one running, one waiting). Six requests are held here mid-body
  // (none holds a place meanwhile), then completed in the same tick while the model is cold: the first
  // cold-starts it, one waits, the rest find the queue full.
  const unloaded = await fetch(`${server.base}/v2/repository/models/tiny-opt/unload`, { method: "POST" });
  assert.equal(unloaded.status, 200);
  const { feeds, eager } = await reference("tiny-opt", 4);
  const body = Buffer.from(jsonRequest(feeds));
  const held = [0, 1, 2, 3, 4, 5].map(() => {
    const r = openRequest(server.base, "/v2/models/tiny-opt/infer", {
      "content-type": "application/json",
      "content-length": body.length,
    });
    r.req.write(body.subarray(0, 10));
    return r;
  });
  const instance = async () =>
    (await (await fetch(`${server.base}/v2/cicada/instance`)).json()) as {
      receiving: number;
      models: { name: string; queued: number }[];
    };
  await until("six requests receiving their body", async () => (await instance()).receiving === 6);
  assert.equal((await instance()).models.find((m) => m.name === "tiny-opt")!.queued, 0);
  for (const h of held) h.req.end(body.subarray(10));
  const replies = await Promise.all(held.map((h) => h.response));
  const statuses = replies.map((r) => r.status);
  assert.ok(statuses.filter((s) => s === 200).length >= 2, `statuses ${statuses.join(",")}`);
  assert.ok(statuses.filter((s) => s === 429).length >= 1, `statuses ${statuses.join(",")}`);
  for (const r of replies) {
    if (r.status === 429) {
      const refusal = JSON.parse(r.body.toString()) as { error: string; code: string };
      assert.equal(refusal.code, "E_QUEUE_FULL");
      assert.match(refusal.error, /tiny-opt: 2 requests are queued/);
      continue;
    }
    assert.equal(r.status, 200, r.body.toString());
    const out = (JSON.parse(r.body.toString()) as InferJson).outputs[0]!;
    assertMatchesEager(out.data!, eager[out.name]!, "held request");
  }
  const after = await infer("tiny-opt", body.toString());
  assert.equal(after.status, 200, await after.text());
});

test("a request past its deadline answers 504; its cold start goes on and the next request is right", async () => {
  const unloaded = await fetch(`${server.base}/v2/repository/models/tiny-resnet/unload`, { method: "POST" });
  assert.equal(((await unloaded.json()) as { state: string }).state, "UNAVAILABLE");
  const { feeds, eager } = await reference("tiny-resnet", 5);
  const late = await infer("tiny-resnet", jsonRequest(feeds, { parameters: { cicada_timeout_ms: 1 } }));
  await expectError(late, 504, "E_TIMEOUT", /no answer within 1 ms \(parameters\.cicada_timeout_ms\)/);
  const next = await infer("tiny-resnet", jsonRequest(feeds));
  const body = (await next.json()) as InferJson;
  assert.equal(next.status, 200, JSON.stringify(body));
  // The late request's work ran to its end: it paid the cold start, this one finds the model warm.
  assert.equal(body.parameters.cicada_cold, false);
  assertMatchesEager(body.outputs[0]!.data!, eager.logits!, "after a timeout");
});

test("twenty slow senders hold no queue: a valid request meanwhile gets 200; they are cut off with 408", async () => {
  // Default queue (16 + 1): the issue's 17 dribbling connections used to fill it for 30 s.
  const slow = await startServer([
    fx.bundles["tiny-resnet"]!,
    "--body-timeout-ms",
    "3000",
    "--min-body-rate",
    "1000",
    "--header-timeout-ms",
    "3000",
    "--cache-root",
    fx.cache,
  ]);
  const head = `POST /v2/models/tiny-resnet/infer HTTP/1.1\r\nHost: h\r\nContent-Type: application/json\r\nContent-Length: 100000\r\n\r\n{`;
  const dribble = Array.from({ length: 40 }, () => " ");
  const bodies = Array.from({ length: 20 }, () =>
    rawExchange(slow.port, [head, ...dribble], { gapMs: 400, timeoutMs: 20_000 }),
  );
  const headers = Array.from({ length: 4 }, () =>
    rawExchange(
      slow.port,
      ["POST /v2/models/tiny-resnet/infer HTTP/1.1\r\n", ...dribble.map(() => "X: 1\r\n")],
      {
        gapMs: 400,
        timeoutMs: 20_000,
      },
    ),
  );
  await until("twenty bodies arriving", async () => {
    const r = (await (await fetch(`${slow.base}/v2/cicada/instance`)).json()) as { receiving: number };
    return r.receiving === 20;
  });
  const { feeds, eager } = await reference("tiny-resnet", 7);
  const t0 = Date.now();
  const res = await fetch(`${slow.base}/v2/models/tiny-resnet/infer`, {
    method: "POST",
    headers: { "content-type": "application/json" },
    body: jsonRequest(feeds),
  });
  const body = (await res.json()) as InferJson;
  assert.equal(res.status, 200, JSON.stringify(body));
  assert.ok(Date.now() - t0 < 10_000, `answered in ${Date.now() - t0} ms`);
  assertMatchesEager(body.outputs[0]!.data!, eager.logits!, "beside slow senders");
  for (const r of await Promise.all([...bodies, ...headers])) {
    assert.equal(r.status, 408, `${r.status} after ${r.ms} ms: ${r.body.toString()}`);
    assert.equal((JSON.parse(r.body.toString()) as { code: string }).code, "E_BODY_TOO_SLOW");
    assert.ok(r.ms < 8000, `cut off after ${r.ms} ms`);
  }
  const r = (await (await fetch(`${slow.base}/v2/cicada/instance`)).json()) as { receiving: number };
  assert.equal(r.receiving, 0);
  assert.equal(await slow.stop(), 0);
});
