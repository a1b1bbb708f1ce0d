// The memory ledger on hand-made samples: host accounting with shared and pinned pages, learned load costs
// (first copy vs further copies), and the load plans under instance and host limits.
import { test } from "node:test";
import assert from "node:assert/strict";
import type { ProcessMemory } from "../../../src/metrics/proc-memory.js";
import type { InstanceState, InstanceView } from "../../../src/serve/platform/policies.js";
import { MemoryLedger } from "../../../src/serve/platform/pool-memory.js";

const MiB = 2 ** 20;
function mem(pss: number, shmem = 0, rss = pss, anon = pss): ProcessMemory {
  return {
    pid: 1,
    rssBytes: rss * MiB,
    rssAnonBytes: anon * MiB,
    pssBytes: pss * MiB,
    pssAnonBytes: 0,
    pssFileBytes: 0,
    pssShmemBytes: shmem * MiB,
  };
}
function view(id: string, state: InstanceState, models: Record<string, number> = {}): InstanceView {
  return {
    id,
    state,
    lastUsed: 0,
    models: new Map(
      Object.entries(models).map(([m, lastUsed]) => [m, { state: "ready" as const, lastUsed }]),
    ),
  };
}

test("host memory: PSS minus shmem, plus shmem or the pinned tmpfs bytes, whichever is larger", () => {
  const l = new MemoryLedger({}, () => 0);
  l.update("a", mem(300, 50, 400, 200));
  l.update("b", mem(250, 50, 350, 150));
  assert.equal(l.hostBytes(), (250 + 200 + 100) * MiB);
  l.pinnedBytes = 180 * MiB;
  assert.equal(l.hostBytes(), (250 + 200 + 180) * MiB, "tmpfs weights count once, mapped or not");
  assert.equal(l.rssSumBytes(), 750 * MiB);
  assert.equal(l.anonSumBytes(), 350 * MiB);
  l.remove("b");
  assert.equal(l.rssSumBytes(), 400 * MiB);
});

test("load costs are learned from the sampled peak, apart for first and further copies", async () => {
  const l = new MemoryLedger({}, (m) => (m === "big" ? 500 * MiB : 0));
  assert.equal(l.estimate("big", false), 500 * MiB, "the guess before any load");
  l.update("a", mem(100));
  l.beginLoad("a", "big", false);
  l.update("a", mem(400));
  l.update("a", mem(300));
  await l.endLoad("a", true);
  assert.equal(l.estimate("big", false), 300 * MiB, "peak 400 - baseline 100");
  assert.equal(l.estimate("big", true), 300 * MiB, "a copy falls back to the first copy's cost");
  l.update("b", mem(100));
  l.beginLoad("b", "big", true);
  l.update("b", mem(160));
  await l.endLoad("b", true);
  assert.equal(l.estimate("big", true), 60 * MiB);
  l.beginLoad("b", "big", true);
  await l.endLoad("b", false);
  assert.equal(l.estimate("big", true), 60 * MiB, "a failed load teaches nothing");
});

test("reserved: a load in flight promises its estimate minus what it already shows", () => {
  const l = new MemoryLedger({}, () => 200 * MiB);
  l.update("a", mem(100));
  l.beginLoad("a", "m", false);
  assert.equal(l.reservedBytes(), 200 * MiB);
  l.update("a", mem(250));
  assert.equal(l.reservedBytes(), 50 * MiB);
  l.update("a", mem(400));
  assert.equal(l.reservedBytes(), 0);
});

test("plans: go, evict the least recently used idle model, wait while something is in flight, refuse", () => {
  const l = new MemoryLedger({ hostBytes: 1000 * MiB }, () => 300 * MiB);
  l.update("a", mem(400));
  l.update("b", mem(300));
  const a = view("a", "idle", { m1: 50, m2: 10 });
  const b = view("b", "busy", { m3: 1 });
  const c = view("c", "cold");
  assert.deepEqual(l.plan(c, "m4", [a, b, c], false), { kind: "go" }, "700 + 300 fits in 1000");
  l.update("c", mem(100));
  assert.deepEqual(
    l.plan(c, "m4", [a, b, c], false),
    { kind: "evict", action: { kind: "unload", instance: "a", model: "m2" } },
    "LRU among free instances; busy b's model is not a candidate",
  );
  const onlyBusy = [view("a", "busy", { m1: 0 }), b, c];
  const wait = l.plan(c, "m4", onlyBusy, false);
  assert.equal(wait.kind, "wait");
  assert.match((wait as { reason: string }).reason, /needs ~300 MiB, 800 MiB of 1000 MiB.*--host-memory-mb/);
  const refuse = l.plan(c, "m4", [view("a", "idle"), view("b", "idle"), c], false);
  assert.equal(refuse.kind, "refuse");
});

test("plans under an instance limit: evict the instance's own models first, else refuse naming the limit", () => {
  const l = new MemoryLedger({ instanceBytes: 500 * MiB }, () => 200 * MiB);
  l.update("a", mem(400));
  const a = view("a", "idle", { old: 5, newer: 9 });
  assert.deepEqual(l.plan(a, "m", [a], false), {
    kind: "evict",
    action: { kind: "unload", instance: "a", model: "old" },
  });
  const empty = view("a", "cold");
  const r = l.plan(empty, "m", [empty], false);
  assert.equal(r.kind, "refuse");
  assert.match(
    (r as { reason: string }).reason,
    /instance a: loading m needs ~200 MiB.*400 MiB of its 500 MiB/,
  );
  l.update("a", mem(250));
  assert.deepEqual(l.plan(empty, "m", [empty], false), { kind: "go" });
});

test("slack: memory an unload freed inside the process is reused by its next load before new memory", async () => {
  const l = new MemoryLedger({ hostBytes: 500 * MiB }, () => 100 * MiB);
  l.update("a", mem(300));
  l.beginLoad("a", "m", false);
  l.update("a", mem(420));
  await l.endLoad("a", true);
  assert.equal(l.estimate("m", false), 120 * MiB);
  // The unload gives back only 20 MiB to the OS: 100 MiB stay reusable by instance a, not by b.
  l.update("a", mem(400));
  l.unloaded("a", "m", 420 * MiB);
  assert.equal(l.needOn("a", "n", false), 0);
  assert.equal(l.needOn("b", "n", false), 100 * MiB);
  const a = view("a", "idle");
  assert.deepEqual(l.plan(a, "n", [a], false), { kind: "go" }, "400 MiB + 0 fits in 500");
  l.beginLoad("a", "n", false);
  l.update("a", mem(450));
  await l.endLoad("a", true);
  assert.equal(l.estimate("n", false), 100 * MiB, "a load that reused slack teaches nothing");
});

test("slack: a load it covers goes even when the host drifted over the limit; one it does not, does not", () => {
  const l = new MemoryLedger({ hostBytes: 400 * MiB }, (m) => (m === "small" ? 50 * MiB : 150 * MiB));
  l.update("a", mem(420));
  l.unloaded("a", "old", 420 * MiB);
  const a = view("a", "idle");
  assert.deepEqual(l.plan(a, "small", [a], false), { kind: "go" }, "the 150 MiB of slack covers 50 MiB");
  l.beginLoad("a", "small", false);
  assert.equal(l.plan(a, "big", [a], false).kind, "wait", "50 MiB promised beyond the slack left");
});

test("evictions prefer the target instance's own models (what it frees, it reuses)", () => {
  const l = new MemoryLedger({ hostBytes: 100 * MiB }, () => 50 * MiB);
  l.update("a", mem(60));
  l.update("b", mem(60));
  const a = view("a", "idle", { mine: 100 });
  const b = view("b", "idle", { older: 1 });
  assert.deepEqual(l.plan(a, "m", [a, b], false), {
    kind: "evict",
    action: { kind: "unload", instance: "a", model: "mine" },
  });
});
