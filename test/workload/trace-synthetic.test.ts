// The synthetic workload has the paper's shape (one hour, 2,426 invocations, per-minute bursts, skewed
// functions), is reproducible from its seed, and turns into bounded, time-scaled arrivals on models.
import { test } from "node:test";
import assert from "node:assert/strict";
import { isCicadaError } from "../../src/errors.js";
import { apportion, syntheticTrace } from "../../src/workload/trace-synthetic.js";
import {
  arrivalsOf,
  assignModels,
  cutTrace,
  topFunctions,
  traceStats,
} from "../../src/workload/trace-invocations.js";

test("one hour, exactly 2,426 invocations, bursts within seconds, quiet minutes, skewed functions", () => {
  for (const seed of [0, 1, 2]) {
    const trace = syntheticTrace({ seed });
    const s = traceStats(trace);
    assert.equal(s.invocations, 2426);
    assert.equal(s.minutes, 60);
    assert.equal(trace.spanMs, 3_600_000);
    assert.ok(s.quietMinutes >= 10, `quiet minutes: ${s.quietMinutes}`);
    const sorted = [...s.perMinute].sort((a, b) => b - a);
    const top12 = sorted.slice(0, 12).reduce((a, b) => a + b, 0);
    assert.ok(top12 / 2426 > 0.7, `the 12 burst minutes carry most invocations: ${top12}`);
    assert.ok(s.topFunctionShare > 0.25 && s.topFunctionShare < 0.8, `skew ${s.topFunctionShare}`);
    // In the busiest minute, most invocations arrive within 6 s.
    const busiest = s.perMinute.indexOf(sorted[0]!);
    const inMinute = trace.invocations.filter((i) => Math.floor(i.t / 60_000) === busiest).map((i) => i.t);
    const densest = inMinute.reduce(
      (best, t) => Math.max(best, inMinute.filter((u) => u >= t && u < t + 6000).length),
      0,
    );
    assert.ok(densest / inMinute.length >= 0.85, `burst density ${densest}/${inMinute.length}`);
  }
});

test("the same seed gives the same trace; another seed another; cutting keeps the first minutes", () => {
  const a = syntheticTrace({ seed: 3 });
  assert.deepEqual(syntheticTrace({ seed: 3 }), a);
  assert.notDeepEqual(syntheticTrace({ seed: 4 }).invocations, a.invocations);
  const ten = syntheticTrace({ seed: 3, minutes: 10 });
  assert.deepEqual(
    ten.invocations,
    a.invocations.filter((i) => i.t < 600_000),
  );
  assert.deepEqual(cutTrace(a, 10), ten);
  const twoHours = syntheticTrace({ seed: 3, minutes: 120 });
  assert.equal(twoHours.invocations.length, 2 * 2426);
  assert.deepEqual(twoHours.invocations.slice(0, 2426), a.invocations);
});

test("apportion: exact totals, proportional, zero weights stay zero", () => {
  assert.deepEqual(apportion([1, 1, 1], 10), [4, 3, 3]);
  assert.deepEqual(apportion([0, 2, 1], 6), [0, 4, 2]);
  assert.equal(
    apportion([0.3, 0.3, 0.4], 2426).reduce((a, b) => a + b, 0),
    2426,
  );
  assert.deepEqual(apportion([0, 0], 5), [0, 0]);
});

test("arrivals: functions assigned to models at random (seeded, stable), time-scaled, bounded", () => {
  const trace = syntheticTrace({ seed: 0, functions: 12 });
  const models = ["m1", "m2", "m3"];
  const arrivals = arrivalsOf(trace, { models, seed: 9, timeScale: 20, maxInvocations: 500 });
  assert.equal(arrivals.length, 500);
  assert.deepEqual(
    arrivals.map((a) => a.t),
    trace.invocations.slice(0, 500).map((i) => i.t / 20),
  );
  const modelOf = new Map(arrivals.map((a) => [a.func, a.model]));
  for (const a of arrivals) assert.equal(modelOf.get(a.func), a.model, "one model per function");
  assert.ok(new Set(modelOf.values()).size >= 2, "functions spread over the models");
  // A function's model does not depend on which other functions are present.
  const alone = assignModels(["fn-3"], models, 9);
  assert.equal(alone.get("fn-3"), assignModels(["fn-1", "fn-2", "fn-3"], models, 9).get("fn-3"));
  assert.throws(
    () => arrivalsOf(trace, { models, seed: 0, timeScale: 0, maxInvocations: 1 }),
    (e: unknown) => isCicadaError(e, "E_USAGE") && /--time-scale/.test(e.message),
  );
  assert.throws(
    () => assignModels(["f"], [], 0),
    (e: unknown) => isCicadaError(e, "E_USAGE"),
  );
});

test("topFunctions keeps the most invoked functions", () => {
  const trace = syntheticTrace({ seed: 1 });
  const top = topFunctions(trace, 2);
  const s = traceStats(top);
  assert.equal(s.functions, 2);
  const counts = new Map<string, number>();
  for (const i of trace.invocations) counts.set(i.func, (counts.get(i.func) ?? 0) + 1);
  const best = [...counts.values()].sort((a, b) => b - a);
  assert.equal(s.invocations, best[0]! + best[1]!);
});
