// The model repository extension and the instance endpoint on real server processes: load starts a cold
// start now and returns when it is done, unload keeps nothing, a load may switch the strategy; stateless
// mode loads the model for every request and disposes it after answering.
import { after, test } from "node:test";
import assert from "node:assert/strict";
import { rm } from "node:fs/promises";
import { openBundle } from "../../../src/format/bundle.js";
import { randomInputs } from "../../../src/runtime/model-inputs.js";
import { runEager } from "../../../src/runtime/reference-runner.js";
import { startServer, stopAll, until, type ServerProcess } from "./server-process.js";
import { assertMatchesEager, jsonRequest, tinyBundles, type InferJson } from "./serve-fixtures.js";

const fx = await tinyBundles("repo", { "tiny-vgg": 2 });
const bundle = fx.bundles["tiny-vgg"]!;
const { manifest } = await openBundle(bundle);
const feeds = randomInputs(manifest.inputs, 6);
const eager = (await runEager(manifest.model.source, feeds)).outputs;
after(async () => {
  await stopAll();
  await rm(fx.root, { recursive: true, force: true });
});

interface InstanceReport {
  pid: number;
  rssBytes: number;
  rssAnonBytes: number;
  pssBytes: number;
  models: { name: string; state: string; strategy: string; loadedAt: string | null; queued: number }[];
}

async function post(server: ServerProcess, path: string, body?: unknown) {
  const res = await fetch(`${server.base}${path}`, {
    method: "POST",
    headers: { "content-type": "application/json" },
    ...(body === undefined ? {} : { body: typeof body === "string" ? body : JSON.stringify(body) }),
  });
  return { status: res.status, headers: res.headers, json: (await res.json()) as Record<string, unknown> };
}

async function instance(server: ServerProcess): Promise<InstanceReport> {
  return (await (await fetch(`${server.base}/v2/cicada/instance`)).json()) as InstanceReport;
}

async function infer(server: ServerProcess): Promise<InferJson> {
  const r = await post(server, "/v2/models/tiny-vgg/infer", jsonRequest(feeds));
  assert.equal(r.status, 200, JSON.stringify(r.json));
  const body = r.json as unknown as InferJson;
  assertMatchesEager(
    body.outputs[0]!.data!,
    eager.logits!,
    `${String(body.parameters.cicada_strategy)} output`,
  );
  return body;
}

test("load, unload and a strategy switch through the repository extension", async () => {
  const server = await startServer([bundle, "--strategy", "cicada", "--cache-root", fx.cache]);
  const ready = () => fetch(`${server.base}/v2/models/tiny-vgg/ready`).then((r) => r.status);
  assert.equal(await ready(), 503);

  const loaded = await post(server, "/v2/repository/models/tiny-vgg/load");
  assert.equal(loaded.status, 200, JSON.stringify(loaded.json));
  assert.equal(loaded.json.state, "READY");
  assert.equal(loaded.json.strategy, "cicada");
  assert.equal(await ready(), 200);
  let info = (await instance(server)).models[0]!;
  assert.equal(info.state, "READY");
  assert.ok(info.loadedAt && Date.parse(info.loadedAt) <= Date.now());
  // Loaded before the request came: the request is warm.
  let body = await infer(server);
  assert.equal(body.parameters.cicada_cold, false);
  assert.equal(body.parameters.cicada_load_ms, null);

  const unloaded = await post(server, "/v2/repository/models/tiny-vgg/unload");
  assert.equal(unloaded.json.state, "UNAVAILABLE");
  assert.equal(await ready(), 503);
  assert.equal((await instance(server)).models[0]!.loadedAt, null);
  body = await infer(server);
  assert.equal(body.parameters.cicada_cold, true);
  assert.ok((body.parameters.cicada_load_ms as number) > 0);

  // A load with another strategy disposes the loaded model and cold-starts the new one.
  const eagerLoad = await post(server, "/v2/repository/models/tiny-vgg/load?strategy=eager");
  assert.equal(eagerLoad.json.strategy, "eager");
  body = await infer(server);
  assert.equal(body.parameters.cicada_strategy, "eager");
  const back = await post(server, "/v2/repository/models/tiny-vgg/load", {
    parameters: { strategy: "mini" },
  });
  assert.equal(back.json.strategy, "mini");
  assert.equal((await infer(server)).parameters.cicada_strategy, "mini");
  const index = await post(server, "/v2/repository/index", { ready: true });
  assert.deepEqual(index.json, [{ name: "tiny-vgg", version: "1", state: "READY", reason: "" }]);

  const bad = await post(server, "/v2/repository/models/tiny-vgg/load?strategy=turbo");
  assert.equal(bad.status, 400);
  assert.match(
    String(bad.json.error),
    /query parameter 'strategy' must be one of eager, .*cicada, found "turbo"/,
  );
  const both = await post(server, "/v2/repository/models/tiny-vgg/load?strategy=eager", {
    parameters: { strategy: "cicada" },
  });
  assert.equal(both.status, 400);
  const unknown = await post(server, "/v2/repository/models/nope/load");
  assert.equal(unknown.status, 404);
  info = (await instance(server)).models[0]!;
  assert.equal(info.strategy, "mini", "refused loads changed nothing");
  assert.equal(await server.stop(), 0);
});

test("stateless: every request cold-starts the model and nothing of it stays loaded", async () => {
  const server = await startServer([bundle, "--stateless", "--strategy", "cicada", "--cache-root", fx.cache]);
  for (let i = 0; i < 3; i++) {
    const body = await infer(server);
    assert.equal(body.parameters.cicada_cold, true, `request ${i}`);
    assert.ok((body.parameters.cicada_load_ms as number) > 0);
  }
  // The model is disposed after the answer went out.
  await until(
    "the model to be disposed",
    async () => (await instance(server)).models[0]!.state === "UNAVAILABLE",
  );
  const mem = await instance(server);
  assert.equal(mem.pid, server.pid);
  assert.ok(mem.rssBytes > 0 && mem.rssAnonBytes > 0 && mem.pssBytes > 0);
  assert.ok(mem.rssAnonBytes <= mem.rssBytes);
  assert.deepEqual(
    mem.models.map((m) => [m.name, m.state, m.loadedAt, m.queued]),
    [["tiny-vgg", "UNAVAILABLE", null, 0]],
  );
  assert.equal(await server.stop(), 0);
});
