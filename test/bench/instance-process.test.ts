// The harness's side of benchmark instances, on real instance processes: an error reply keeps its code, an
// instance killed with a request in flight fails that request (and later ones) instead of hanging, and each
// scenario hands cold starts the instances it promises (reload: one per strategy, kept; fresh: a new one
// per cold start, gone afterwards).
import { test } from "node:test";
import assert from "node:assert/strict";
import { isCicadaError } from "../../src/errors.js";
import { Instance, scenarioInstances } from "../../src/bench/instance-process.js";

/** True while process `pid` exists. */
function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

/** Waits (at most 10 s) for process `pid` to be gone. */
async function gone(pid: number): Promise<boolean> {
  for (let i = 0; i < 200 && alive(pid); i++) await new Promise((r) => setTimeout(r, 50));
  return !alive(pid);
}

test(
  "an error reply rejects its request with the instance's error code; a killed instance fails what waits",
  { timeout: 60_000 },
  async () => {
    const instance = await Instance.spawn();
    assert.ok(instance.pid > 0 && instance.ortVersion !== "");
    await assert.rejects(
      instance.request<"warm-runs">({
        kind: "warm-runs",
        bundleDir: "/nonexistent-bundle",
        seed: 0,
        runs: 1,
      }),
      (e) => isCicadaError(e) && e.code !== "E_RUNTIME" && /nonexistent-bundle/.test(e.message),
    );
    // Stopped, the instance cannot answer before it is killed: the request is still waiting when it dies.
    process.kill(instance.pid, "SIGSTOP");
    const waiting = instance.request<"warm-runs">({
      kind: "warm-runs",
      bundleDir: "/nonexistent-bundle",
      seed: 0,
      runs: 1,
    });
    process.kill(instance.pid, "SIGKILL");
    await assert.rejects(waiting, (e) => isCicadaError(e) && /exited \(SIGKILL\)/.test(e.message));
    await assert.rejects(
      instance.request<"warm-runs">({ kind: "warm-runs", bundleDir: "/x", seed: 0, runs: 1 }),
      /has exited/,
    );
    await instance.close();
  },
);

test(
  "reload keeps one instance per strategy; fresh starts one per cold start and ends it",
  { timeout: 60_000 },
  async () => {
    const reload = await scenarioInstances("reload", ["eager", "cicada"]);
    const pidOf = (s: "eager" | "cicada") => reload.withInstance(s, (i) => Promise.resolve(i.pid));
    const [eager1, cicada1, eager2] = [await pidOf("eager"), await pidOf("cicada"), await pidOf("eager")];
    assert.equal(eager1, eager2, "the same instance serves a strategy every time");
    assert.notEqual(eager1, cicada1, "each strategy has its own instance");
    await reload.close();
    assert.ok((await gone(eager1)) && (await gone(cicada1)), "close ends reload's instances");

    const fresh = await scenarioInstances("fresh", ["eager"]);
    const first = await fresh.withInstance("eager", (i) => Promise.resolve(i.pid));
    assert.ok(await gone(first), "a fresh instance ends after its cold start");
    const second = await fresh.withInstance("eager", (i) => Promise.resolve(i.pid));
    assert.notEqual(first, second);
    await fresh.close();
  },
);
