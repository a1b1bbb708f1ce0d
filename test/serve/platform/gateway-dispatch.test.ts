// The dispatcher's faults over real instance processes, made deterministic by stopping an instance
// (SIGSTOP) so that a request is surely in flight: an instance killed mid-request (502 naming it, replaced,
// the next request succeeds), a full queue (429), and a request past its deadline (504, never a hang).
import { test } from "node:test";
import assert from "node:assert/strict";
import type { Platform } from "../../../src/serve/platform/platform.js";
import { alive, infer, testPlatform, tinyBundles, waitFor } from "./platform-fixtures.js";

const fx = await tinyBundles("cicada-dispatch-");
const platforms: Platform[] = [];
test.after(async () => {
  for (const p of platforms) await p.close();
  await fx.cleanup();
});

async function start(options: Parameters<typeof testPlatform>[2]): Promise<Platform> {
  const p = await testPlatform(fx.root, [fx.resnet], options);
  platforms.push(p);
  return p;
}

test("an instance killed mid-request: 502 naming it, the pool replaces it, the next request succeeds", async () => {
  const p = await start({ instances: 1 });
  const warm = await infer(p.url, fx.resnet);
  assert.equal(warm.status, 200);
  await warm.arrayBuffer();
  const victim = p.pool.instances[0]!;
  process.kill(victim.pid, "SIGSTOP");
  const pending = infer(p.url, fx.resnet);
  await waitFor("the request to be in flight on the instance", () => victim.state === "busy");
  process.kill(victim.pid, "SIGKILL");
  const r = await pending;
  const body = (await r.json()) as { error: string };
  assert.equal(r.status, 502, body.error);
  assert.equal(r.headers.get("x-cicada-error"), "E_INSTANCE_DIED");
  assert.match(body.error, new RegExp(`instance ${victim.id} \\(pid ${victim.pid}\\)`));
  await waitFor("the victim to be evicted", () => victim.state === "evicted");
  assert.deepEqual(
    victim.history.map((h) => h.state),
    ["cold", "busy", "idle", "busy", "evicted"],
  );
  await waitFor(
    "a replacement instance",
    () => p.pool.instances.length === 1 && p.pool.instances[0] !== victim,
  );
  const next = await infer(p.url, fx.resnet);
  assert.equal(next.status, 200, await next.clone().text());
  assert.notEqual(next.headers.get("x-cicada-instance"), victim.id);
  assert.equal(next.headers.get("x-cicada-cold"), "1", "the replacement cold-starts the model");
  await next.arrayBuffer();
  assert.equal(p.dispatcher.stats.instanceDeaths, 1);
});

test("a full queue answers 429; what was admitted is served once the instance is back", async () => {
  const p = await start({ instances: 1, maxQueue: 1 });
  const instance = p.pool.instances[0]!;
  process.kill(instance.pid, "SIGSTOP");
  try {
    const inFlight = infer(p.url, fx.resnet);
    await waitFor("the first request in flight", () => instance.state === "busy");
    const queued = infer(p.url, fx.resnet);
    await waitFor("the second request queued", () => p.dispatcher.queued === 1);
    const refused = await infer(p.url, fx.resnet);
    const body = (await refused.json()) as { error: string };
    assert.equal(refused.status, 429);
    assert.match(body.error, /queue is full: 1 requests wait.*--max-queue 1/);
    process.kill(instance.pid, "SIGCONT");
    for (const r of await Promise.all([inFlight, queued])) {
      assert.equal(r.status, 200);
      await r.arrayBuffer();
    }
    assert.equal(p.dispatcher.stats.rejectedQueueFull, 1);
  } finally {
    if (alive(instance.pid)) process.kill(instance.pid, "SIGCONT");
  }
});

test("past the deadline: 504 in flight (the instance is recycled) and in the queue; then service resumes", async () => {
  const p = await start({ instances: 1, timeoutMs: 1500 });
  const stuck = p.pool.instances[0]!;
  process.kill(stuck.pid, "SIGSTOP");
  const inFlight = infer(p.url, fx.resnet);
  await waitFor("the request in flight", () => stuck.state === "busy");
  const queued = await infer(p.url, fx.resnet);
  const q = (await queued.json()) as { error: string };
  assert.equal(queued.status, 504);
  assert.match(q.error, /1500 ms passed waiting for a free instance/);
  const r = await inFlight;
  const body = (await r.json()) as { error: string };
  assert.equal(r.status, 504, body.error);
  assert.match(body.error, new RegExp(`instance ${stuck.id} did not answer`));
  await waitFor(
    "the stuck instance to be replaced",
    () => stuck.state === "evicted" && p.pool.instances.length === 1,
  );
  const next = await infer(p.url, fx.resnet);
  assert.equal(next.status, 200, await next.clone().text());
  await next.arrayBuffer();
});
