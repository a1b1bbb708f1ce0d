// Each policy carried out over real instance processes: stateless (every request cold, nothing kept),
// keep-alive (unloaded after the TTL), preload (an idle instance pre-loads a model whose instance is busy),
// shared-weights (the weights on tmpfs, counted once), and the host memory limit refusing what cannot fit.
import { test } from "node:test";
import assert from "node:assert/strict";
import { existsSync, readdirSync } from "node:fs";
import { isCicadaError } from "../../../src/errors.js";
import type { PoolInstance } from "../../../src/serve/platform/pool-instance.js";
import type { Platform } from "../../../src/serve/platform/platform.js";
import { infer, testPlatform, tinyBundles, waitFor } from "./platform-fixtures.js";

const fx = await tinyBundles("cicada-platform-");
const platforms: Platform[] = [];
test.after(async () => {
  for (const p of platforms) await p.close();
  await fx.cleanup();
});

async function start(options: Parameters<typeof testPlatform>[2], bundles = [fx.resnet]): Promise<Platform> {
  const p = await testPlatform(fx.root, bundles, options);
  platforms.push(p);
  return p;
}

async function ok(r: Response): Promise<Response> {
  assert.equal(r.status, 200, await r.clone().text());
  await r.clone().arrayBuffer();
  return r;
}

test("stateless: every request is a cold start and the instance keeps nothing", async () => {
  const p = await start({ policy: "stateless", strategy: "eager" });
  for (let k = 0; k < 3; k++) {
    const r = await ok(await infer(p.url, fx.resnet));
    assert.equal(r.headers.get("x-cicada-cold"), "1", `request ${k}`);
  }
  const i = p.pool.instances[0]!;
  assert.equal(i.state, "cold");
  assert.equal(i.models.size, 0);
  assert.deepEqual(
    i.history.map((h) => h.state),
    ["cold", "busy", "cold", "busy", "cold", "busy", "cold"],
  );
  assert.ok(p.ledger.estimate("tiny-resnet", false) > 0, "the load's memory cost was learned");
});

test("keep-alive: warm within the TTL, unloaded after it, then cold again", async () => {
  const p = await start({ policy: "keep-alive", policyConfig: { ttlMs: 400 } });
  assert.equal((await ok(await infer(p.url, fx.resnet))).headers.get("x-cicada-cold"), "1");
  assert.equal((await ok(await infer(p.url, fx.resnet))).headers.get("x-cicada-cold"), "0");
  const i = p.pool.instances[0]!;
  await waitFor("the TTL unload", () => i.state === "cold" && p.dispatcher.stats.unloads === 1);
  assert.equal((await ok(await infer(p.url, fx.resnet))).headers.get("x-cicada-cold"), "1");
  assert.deepEqual(
    i.history.map((h) => h.state),
    ["cold", "busy", "idle", "busy", "idle", "cold", "busy", "idle"],
  );
  assert.match(i.history[5]!.reason ?? "", /unloaded tiny-resnet/);
});

test("preload: while the instance holding a model is busy, an idle instance pre-loads it", async () => {
  const p = await start({ policy: "preload", instances: 2 });
  const [holder, other] = p.pool.instances as [PoolInstance, PoolInstance];
  // The first request goes to the first cold instance, stopped so that it stays busy.
  process.kill(holder.pid, "SIGSTOP");
  try {
    const held = infer(p.url, fx.resnet);
    await waitFor("the request held on the first instance", () => holder.state === "busy");
    await waitFor(
      "the pre-load on the idle instance",
      () => other.models.get("tiny-resnet")?.state === "ready",
    );
    assert.equal(p.dispatcher.stats.preloads, 1);
    assert.deepEqual(
      other.history.map((h) => [h.state, h.reason]),
      [
        ["cold", undefined],
        ["loading", "preload tiny-resnet"],
        ["warm", undefined],
      ],
    );
    const next = await ok(await infer(p.url, fx.resnet));
    assert.equal(next.headers.get("x-cicada-instance"), other.id);
    assert.equal(next.headers.get("x-cicada-cold"), "0", "served warm thanks to the pre-load");
    process.kill(holder.pid, "SIGCONT");
    await ok(await held);
  } finally {
    process.kill(holder.pid, "SIGCONT");
  }
});

test("shared-weights: the instances' cache on tmpfs, counted once in host memory, removed at close", async () => {
  await assert.rejects(
    start({ policy: "shared-weights", strategy: "eager" }),
    (e: unknown) => isCicadaError(e, "E_USAGE") && /shared-weights needs a strategy/.test(e.message),
  );
  const p = await start({ policy: "shared-weights", instances: 2 });
  const cache = p.cacheRoot!;
  assert.match(cache, /^\/dev\/shm\/cicada-shared-/);
  assert.ok(readdirSync(cache).length > 0, "the first instance prepared the cached stages there");
  assert.ok(p.ledger.pinnedBytes > 0);
  await ok(await infer(p.url, fx.resnet));
  await p.pool.sample();
  assert.ok(p.ledger.hostBytes() >= p.ledger.pinnedBytes);
  await p.close();
  platforms.splice(platforms.indexOf(p), 1);
  assert.equal(existsSync(cache), false);
});

test("host memory limit: a load that cannot fit, with nothing to evict, is refused (503)", async () => {
  const p = await start({ hostMemoryBytes: 1 << 20 });
  const r = await infer(p.url, fx.resnet);
  const body = (await r.json()) as { error: string };
  assert.equal(r.status, 503);
  assert.equal(r.headers.get("x-cicada-error"), "E_HOST_MEMORY");
  assert.match(
    body.error,
    /host memory: loading tiny-resnet needs ~\d+ MiB, \d+ MiB of 1 MiB.*--host-memory-mb/,
  );
  assert.equal(p.dispatcher.stats.refusedMemory, 1);
});

test("host memory limit: the least recently used idle model is evicted to make room", async () => {
  const p = await start({ instances: 1 }, [fx.resnet, fx.opt]);
  await ok(await infer(p.url, fx.resnet));
  await waitFor(
    "tiny-resnet's cost to be learned",
    () => p.ledger.learnedBytes("tiny-resnet", false) !== undefined,
  );
  await p.pool.sample();
  // Less room than tiny-opt needs beside tiny-resnet, and more than it needs in tiny-resnet's place. The
  // margin is half tiny-resnet's cost either way (measured: ~40 MiB, against < 1 MiB of PSS drift between
  // samples), so that the instance's PSS may drift between samples.
  const resnetBytes = p.ledger.learnedBytes("tiny-resnet", false)!;
  assert.ok(resnetBytes > 0, "loading tiny-resnet raised the instance's PSS");
  p.ledger.limits.hostBytes = p.ledger.hostBytes() + p.ledger.estimate("tiny-opt", false) - resnetBytes / 2;
  const i = p.pool.instances[0]!;
  const request = infer(p.url, fx.opt);
  // The eviction's unload takes a while (held here: the instance is stopped for longer than the
  // dispatcher's 200 ms tick): the request must wait for the room it makes, not be refused meanwhile.
  await waitFor("the eviction", () => p.dispatcher.stats.evictions > 0, 20_000, 2);
  process.kill(i.pid, "SIGSTOP");
  try {
    await new Promise((r) => setTimeout(r, 700));
  } finally {
    process.kill(i.pid, "SIGCONT");
  }
  await ok(await request);
  assert.equal(p.dispatcher.stats.evictions, 1);
  assert.deepEqual([...i.models.keys()], ["tiny-opt"]);
});

test("instance memory limit: a model that cannot fit is refused; an instance over it sheds, then is recycled", async () => {
  const tight = await start({ instanceMemoryBytes: 1 << 20 });
  const r = await infer(tight.url, fx.resnet);
  const body = (await r.json()) as { error: string };
  assert.equal(r.status, 503);
  assert.match(
    body.error,
    /instance i\d+: loading tiny-resnet needs ~\d+ MiB.*of its 1 MiB \(--instance-memory-mb\)/,
  );
  const p = await start({ instances: 1 });
  const first = p.pool.instances[0]!;
  await p.pool.sample();
  // Room for the empty instance and a little more: serving tiny-resnet takes it over the limit.
  p.ledger.limits.instanceBytes = p.ledger.instanceBytes(first.id) + (1 << 20);
  await ok(await infer(p.url, fx.resnet));
  await waitFor(
    "the instance to be recycled and replaced",
    () => first.state === "evicted" && p.pool.instances.length === 1 && p.pool.instances[0] !== first,
  );
  assert.ok(p.dispatcher.stats.evictions >= 1, "it shed its model first");
  assert.equal(p.dispatcher.stats.recycled, 1);
  assert.match(first.history.at(-1)!.reason ?? "", /recycled: \d+ MiB over --instance-memory-mb/);
  // The replacement is a new process whose baseline differs from the first's by a few MiB, and the ledger
  // has learned what a load costs: give it room for that load so that the request tests the replacement.
  const replacement = p.pool.instances[0]!;
  await p.pool.sample();
  p.ledger.limits.instanceBytes =
    p.ledger.instanceBytes(replacement.id) + p.ledger.estimate("tiny-resnet", false) + (32 << 20);
  await ok(await infer(p.url, fx.resnet));
});
