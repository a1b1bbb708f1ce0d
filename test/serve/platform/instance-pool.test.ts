// The instance lifecycle's one transition function (legal paths, refused moves, recorded timings), and the
// pool's start failing clearly when an instance cannot start.
import { test } from "node:test";
import assert from "node:assert/strict";
import type { ChildProcess } from "node:child_process";
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { isCicadaError } from "../../../src/errors.js";
import { InstancePool } from "../../../src/serve/platform/instance-pool.js";
import { INSTANCE_TRANSITIONS, PoolInstance } from "../../../src/serve/platform/pool-instance.js";
import { MemoryLedger } from "../../../src/serve/platform/pool-memory.js";

function instance(): PoolInstance {
  const child = { pid: 4242 } as ChildProcess;
  return new PoolInstance("i9", child, "http://127.0.0.1:1", new Promise(() => {}));
}

test("the lifecycle: the paper's path and the platform's other legal moves", async () => {
  const i = instance();
  for (const to of ["loading", "warm", "busy", "idle", "busy", "cold", "busy", "idle", "evicted"] as const) {
    i.transition(to, `to ${to}`);
    await new Promise((r) => setTimeout(r, 2));
  }
  assert.deepEqual(
    i.history.map((h) => h.state),
    ["cold", "loading", "warm", "busy", "idle", "busy", "cold", "busy", "idle", "evicted"],
  );
  assert.equal(i.history[1]!.reason, "to loading");
  for (let k = 1; k < i.history.length; k++) assert.ok(i.history[k]!.at >= i.history[k - 1]!.at);
  assert.ok(i.timeIn.busy > 0 && i.timeIn.cold > 0 && i.timeIn.loading > 0, JSON.stringify(i.timeIn));
  assert.equal(i.timeIn.evicted, 0, "the current state is counted at its next move");
});

test("illegal moves are refused and leave the state as it was", () => {
  const i = instance();
  for (const to of ["idle", "warm", "cold"] as const) {
    assert.throws(
      () => i.transition(to),
      (e: unknown) =>
        isCicadaError(e, "E_RUNTIME") && e.message.includes(`illegal lifecycle move cold -> ${to}`),
    );
  }
  assert.equal(i.state, "cold");
  i.transition("evicted");
  for (const to of Object.keys(INSTANCE_TRANSITIONS) as (keyof typeof INSTANCE_TRANSITIONS)[])
    assert.throws(() => i.transition(to), /illegal lifecycle move evicted ->/);
  assert.deepEqual(INSTANCE_TRANSITIONS.evicted, [], "evicted is final");
});

test("an instance that cannot start fails the pool's start, naming it and quoting its stderr", async () => {
  const root = await mkdtemp(join(tmpdir(), "cicada-pool-"));
  try {
    const fake = join(root, "not-a-bundle");
    await writeFile(join(root, "manifest.json"), "{}");
    await assert.rejects(
      InstancePool.start({
        bundles: [fake],
        instances: 2,
        strategy: "cicada",
        stateless: false,
        ledger: new MemoryLedger({}, () => 0),
        startTimeoutMs: 60_000,
      }),
      (e: unknown) =>
        isCicadaError(e, "E_INSTANCE_START") &&
        /instance i0: it exited before listening/.test(e.message) &&
        /last stderr lines/.test(e.message),
    );
  } finally {
    await rm(root, { recursive: true, force: true });
  }
});
