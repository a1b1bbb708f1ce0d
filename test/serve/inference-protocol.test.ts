// The protocol core in-process (no socket): a real instance over a tiny model, called with WHATWG
// Requests. What only the core can show deterministically: requests admitted in the same tick meet the
// queue bound exactly; a wrong request costs no cold start; a streamed body is cut at the limit; draining.
import { after, test } from "node:test";
import assert from "node:assert/strict";
import { rm } from "node:fs/promises";
import { openBundle } from "../../src/format/bundle.js";
import { randomInputs } from "../../src/runtime/model-inputs.js";
import { startInstance } from "../../src/serve/function-instance.js";
import { jsonRequest, tinyBundles, type InferJson } from "./serve-fixtures.js";

const fx = await tinyBundles("core", { "tiny-resnet": 2 });
const bundle = fx.bundles["tiny-resnet"]!;
const { manifest } = await openBundle(bundle);
const instance = await startInstance({
  bundles: [bundle],
  strategy: "cicada",
  stateless: false,
  workers: 1,
  maxBodyBytes: 300_000,
  maxQueue: 0,
  timeoutMs: 20_000,
  cacheRoot: fx.cache,
});
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
  const json = (await res.json()) as { error: string };
  return { status: res.status, code: res.headers.get("x-cicada-error"), message: json.error };
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
  const server = await startInstance({
    bundles: [bundle],
    strategy: "mini",
    stateless: false,
    workers: 1,
    maxBodyBytes: 300_000,
    maxQueue: 1,
    timeoutMs: 20_000,
    cacheRoot: fx.cache,
  });
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
