// The protocol core in-process (no socket): a real instance over a tiny model, called with WHATWG
// Requests. What only the core can show deterministically: requests admitted in the same tick meet the
// queue bound exactly; a body still arriving holds no place; a wrong request costs no cold start; a
// streamed body is cut at the limit; unknown methods; hostile bodies answered 400/413, never 500; draining;
// the receiving budget on every route, refused with 503 E_SERVER_BUSY and given back by failed bodies.
import { after, test } from "node:test";
import assert from "node:assert/strict";
import { rm } from "node:fs/promises";
import { openBundle } from "../../../src/format/bundle.js";
import { randomInputs } from "../../../src/runtime/model-inputs.js";
import { startInstance, type InstanceOptions } from "../../../src/serve/function/function-instance.js";
import { jsonRequest, tinyBundles, type InferJson } from "./serve-fixtures.js";

const fx = await tinyBundles("core", { "tiny-resnet": 2 });
const bundle = fx.bundles["tiny-resnet"]!;
const { manifest } = await openBundle(bundle);
/** An instance of the tiny model with these options (besides the main one below). */
const startOn = (options: Partial<InstanceOptions>) =>
  startInstance({
    bundles: [bundle],
    strategy: "cicada",
    stateless: false,
    workers: 1,
    maxBodyBytes: 300_000,
    maxQueue: 0,
    timeoutMs: 20_000,
    cacheRoot: fx.cache,
    ...options,
  });
const instance = await startOn({});
after(async () => {
  await instance.close();
  await rm(fx.root, { recursive: true, force: true });
});

const url = (path: string) => `http://instance${path}`;
const infer = (body: string | ReadableStream<Uint8Array>) =>
  instance.server.handle(
    new Request(url("/v2/models/tiny-resnet/infer"), {
      method: "POST",
      body,
      duplex: "half",
    }),
  );
const body = jsonRequest(randomInputs(manifest.inputs, 1));

async function error(res: Response): Promise<{ status: number; code: string | null; message: string }> {
  const json = (await res.json()) as { error: string; code: string };
  assert.equal(json.code, res.headers.get("x-cicada-error"), "the body's code is the header's");
  return { status: res.status, code: json.code, message: json.error };
}

test("a wrong request is refused before any loading work: the model stays UNAVAILABLE", async () => {
  const wrong = body
    .replace("[1,3,64,64]", "[1,3,64,32]")
    .replace(/("data":\[)[^\]]*\]/, `$1${"0,".repeat(6143)}0]`);
  const res = await error(await infer(wrong));
  assert.equal(res.status, 400);
  assert.equal(res.code, "E_INPUT_SHAPE");
  assert.equal(instance.host.describe("tiny-resnet").state, "UNAVAILABLE");
});

test("requests admitted in the same tick meet the bound exactly: --max-queue 0 admits one", async () => {
  const responses = await Promise.all([infer(body), infer(body), infer(body)]);
  assert.deepEqual(
    responses.map((r) => r.status),
    [200, 429, 429],
  );
  const first = (await responses[0].json()) as InferJson;
  assert.equal(first.parameters.cicada_cold, true);
  assert.equal((await error(responses[1])).code, "E_QUEUE_FULL");
  assert.equal(instance.host.describe("tiny-resnet").queued, 0);
  assert.equal((await infer(body)).status, 200, "admitted again once the first finished");
});

test("a streamed body without a length is cut at --max-body-bytes", async () => {
  let pulled = 0;
  const stream = new ReadableStream<Uint8Array>({
    pull(controller) {
      pulled += 65536;
      controller.enqueue(new Uint8Array(65536));
    },
  });
  const res = await error(await infer(stream));
  assert.equal(res.status, 413);
  assert.match(res.message, /more than 300000 bytes/);
  assert.ok(pulled <= 300_000 + 2 * 65536, `read no more than the limit and a chunk (pulled ${pulled})`);
});

test("routes: versions, percent-encoded names, unknown paths and methods", async () => {
  const get = (path: string, method = "GET") => instance.server.handle(new Request(url(path), { method }));
  assert.equal((await get("/v2/models/tiny%2Dresnet/versions/1")).status, 200);
  assert.equal((await get("/v2/models/tiny-resnet/")).status, 200, "a trailing slash is the same path");
  assert.equal((await error(await get("/v2/models/tiny-resnet/versions/7/ready"))).code, "E_MODEL_UNKNOWN");
  assert.equal((await error(await get("/v2/models/%E0%A4%A"))).code, "E_REQUEST");
  assert.equal((await error(await get("/v3"))).code, "E_ROUTE_UNKNOWN");
  const wrongMethod = await get("/v2/health/ready", "POST");
  assert.equal(wrongMethod.status, 405);
  assert.match((await error(wrongMethod)).message, /takes GET, not POST/);
});

test("draining: readiness and new work answer 503, liveness stays 200", async () => {
  const server = await startOn({ strategy: "mini", maxQueue: 1 });
  try {
    server.server.drain();
    const handle = (path: string, method = "GET") => server.server.handle(new Request(url(path), { method }));
    assert.equal((await handle("/v2/health/ready")).status, 503);
    assert.equal((await handle("/v2/health/live")).status, 200);
    const load = await error(await handle("/v2/repository/models/tiny-resnet/load", "POST"));
    assert.deepEqual([load.status, load.code], [503, "E_UNAVAILABLE"]);
    const res = await server.server.handle(
      new Request(url("/v2/models/tiny-resnet/infer"), { method: "POST", body }),
    );
    assert.equal((await error(res)).status, 503);
  } finally {
    await server.close();
  }
});

test("a body still arriving holds no place in the queue: --max-queue 0 serves a complete request meanwhile", async () => {
  const bytes = Buffer.from(body);
  let feed!: ReadableStreamDefaultController<Uint8Array>;
  const slow = new ReadableStream<Uint8Array>({
    start(controller) {
      feed = controller;
      controller.enqueue(bytes.subarray(0, 10));
    },
  });
  const held = infer(slow);
  const instanceInfo = async () =>
    (await (await instance.server.handle(new Request(url("/v2/cicada/instance")))).json()) as {
      receiving: number;
      models: { queued: number }[];
    };
  while ((await instanceInfo()).receiving !== 1) await new Promise((r) => setTimeout(r, 5));
  assert.equal((await instanceInfo()).models[0]!.queued, 0, "the request still receiving is not queued");
  const other = await infer(body);
  assert.equal(other.status, 200, await other.clone().text());
  feed.enqueue(bytes.subarray(10));
  feed.close();
  const late = await held;
  assert.equal(late.status, 200, await late.clone().text());
  assert.deepEqual(
    ((await late.json()) as InferJson).outputs[0]!.data,
    ((await other.json()) as InferJson).outputs[0]!.data,
  );
  assert.equal((await instanceInfo()).receiving, 0);
});

test("unknown methods answer 405 on every path, with Allow where the path has routes; error bodies carry the code", async () => {
  const call = (path: string, method: string) => instance.server.handle(new Request(url(path), { method }));
  for (const method of ["PATCH", "PUT", "DELETE", "OPTIONS", "HEAD", "PROPFIND"]) {
    const r = await call("/v2/models/tiny-resnet/infer", method);
    assert.equal(r.status, 405, method);
    assert.equal(r.headers.get("allow"), "POST", method);
    assert.equal(r.headers.get("x-cicada-error"), "E_METHOD_NOT_ALLOWED");
  }
  const patch = await call("/nowhere", "PATCH");
  assert.equal(patch.status, 405);
  assert.equal(patch.headers.get("allow"), null);
  const body = (await patch.json()) as { error: string; code: string };
  assert.deepEqual(body.code, "E_METHOD_NOT_ALLOWED");
  assert.match(body.error, /method "PATCH" is not one this server takes \(GET, POST\)/);
  const wrong = await call("/v2/health/live", "POST");
  assert.equal(wrong.headers.get("allow"), "GET");
  assert.deepEqual(instance.server.allowed("/v2/models/any/versions/1/infer"), ["POST"]);
  assert.deepEqual(instance.server.allowed("/v2/models/any"), ["GET"]);
  assert.deepEqual(instance.server.allowed("/nowhere"), []);
  const missing = (await (await call("/nowhere", "GET")).json()) as { error: string; code: string };
  assert.equal(missing.code, "E_ROUTE_UNKNOWN");
});

test("a body nested 10,000 deep or holding 1e400 is a 400 naming the field, not a 500", async () => {
  const deep = body
    .replace(/"data":\[/, `"data":${"[".repeat(10_001)}`)
    .replace(/\]\}\]\}$/, `${"]".repeat(10_000)}]}]}`);
  const r1 = await error(await infer(deep));
  assert.deepEqual([r1.status, r1.code], [400, "E_REQUEST"]);
  assert.match(r1.message, /field 'inputs\.0\.data' nests deeper than 64 levels/);
  const huge = body.replace(/("data":\[)[^,]*/, "$11e400");
  const r2 = await error(await infer(huge));
  assert.deepEqual([r2.status, r2.code], [400, "E_REQUEST"]);
  assert.match(r2.message, /field 'inputs\.0\.data\[0\]': expected a finite FP32 number/);
  const limit = body.replace("[1,3,64,64]", `[1,3,64,64,${"1,".repeat(40)}1]`);
  const r3 = await error(await infer(limit));
  assert.deepEqual([r3.status, r3.code], [413, "E_INPUT_LIMIT"]);
});

test("the receiving budget (default 4 × --max-body-bytes) covers every route and is given back when a body fails", async () => {
  type Info = { receiving: number; receivingBytes: number; maxReceivingBytes: number };
  const info = async () =>
    (await (await instance.server.handle(new Request(url("/v2/cicada/instance")))).json()) as Info;
  assert.equal((await info()).maxReceivingBytes, 1_200_000);
  // Four bodies declaring the largest size fill it; each is held open by its own stream.
  const feeds: ReadableStreamDefaultController<Uint8Array>[] = [];
  const held = [0, 1, 2, 3].map(() =>
    instance.server.handle(
      new Request(url("/v2/models/tiny-resnet/infer"), {
        method: "POST",
        headers: { "content-length": "300000" },
        body: new ReadableStream<Uint8Array>({ start: (c) => void feeds.push(c) }),
        duplex: "half",
      }),
    ),
  );
  while ((await info()).receiving !== 4) await new Promise((r) => setTimeout(r, 5));
  assert.equal((await info()).receivingBytes, 1_200_000);
  // Any body now: a repository request's two bytes, a streamed infer body's first byte.
  const index = await instance.server.handle(
    new Request(url("/v2/repository/index"), { method: "POST", body: "{}" }),
  );
  assert.equal(index.headers.get("retry-after"), "1");
  const busy = await error(index);
  assert.deepEqual([busy.status, busy.code], [503, "E_SERVER_BUSY"]);
  assert.match(
    busy.message,
    /would take 2 more, past its budget of 1200000 bytes \(--max-receiving-bytes\); retry later/,
  );
  const streamed = await error(
    await infer(new ReadableStream({ start: (c) => c.enqueue(new Uint8Array(1)) })),
  );
  assert.deepEqual([streamed.status, streamed.code], [503, "E_SERVER_BUSY"]);
  assert.match(streamed.message, /this body, 1 bytes so far, would take 1 more/);
  assert.equal((await info()).receivingBytes, 1_200_000, "a refused body holds nothing");
  // The held clients go away mid-body: each is a coded 400 and gives its room back.
  feeds.forEach((c) => c.error(new Error("connection reset")));
  for (const r of await Promise.all(held)) assert.equal((await error(r)).code, "E_REQUEST");
  const gone = await info();
  assert.deepEqual([gone.receiving, gone.receivingBytes], [0, 0]);
  // A body that fails to decode gives its room back too; a valid one is served.
  assert.equal((await error(await infer("{not json"))).status, 400);
  assert.equal((await info()).receivingBytes, 0);
  assert.equal((await infer(body)).status, 200);
  assert.equal((await info()).receivingBytes, 0);
  await assert.rejects(startOn({ maxReceivingBytes: 299_999 }), {
    code: "E_USAGE",
    message: /--max-receiving-bytes \(299999\) is smaller than --max-body-bytes \(300000\)/,
  });
});

test("a model its strategy cannot load under the instance's memory budget is answered 507 E_MEMORY_BUDGET", async () => {
  // 1 MiB: less than the process holds already, so even a strategy that maps its weights cannot fit.
  const server = await startOn({ strategy: "eager", memoryBudgetBytes: 2 ** 20 });
  try {
    const res = await server.server.handle(
      new Request(url("/v2/models/tiny-resnet/infer"), { method: "POST", body }),
    );
    const refused = await error(res);
    assert.deepEqual([refused.status, refused.code], [507, "E_MEMORY_BUDGET"]);
    assert.match(refused.message, /eager needs about .* budget of 1\.0 MiB/);
  } finally {
    await server.close();
  }
});
