// The four policies' decisions on hand-made instance views: routing, TTL unloads, InstaInfer pre-loading,
// the demand estimate, and shared-weights refusing strategies that copy weights.
import { test } from "node:test";
import assert from "node:assert/strict";
import { isCicadaError } from "../../../src/errors.js";
import {
  createPolicy,
  Demand,
  routeWarmFirst,
  type InstanceState,
  type InstanceView,
  type ModelSlotView,
} from "../../../src/serve/platform/policies.js";

function view(
  id: string,
  state: InstanceState,
  models: Record<string, ModelSlotView> = {},
  lastUsed = 0,
): InstanceView {
  return { id, state, models: new Map(Object.entries(models)), lastUsed };
}
const ready = (lastUsed: number): ModelSlotView => ({ state: "ready", lastUsed });
const loading: ModelSlotView = { state: "loading", lastUsed: 0 };

test("routing: warm (most recent) > joining a load > cold > least recently used free instance", () => {
  const a = view("a", "idle", { m: ready(10) }, 10);
  const b = view("b", "idle", { m: ready(20) }, 20);
  const busy = view("c", "busy", { m: ready(30) }, 30);
  const cold = view("d", "cold");
  const other = view("e", "idle", { n: ready(5) }, 5);
  const other2 = view("f", "warm", { n: ready(8) }, 8);
  const joining = view("g", "loading", { m: loading });
  assert.equal(routeWarmFirst("m", [a, b, busy, cold])?.id, "b");
  assert.equal(routeWarmFirst("m", [busy, cold, joining])?.id, "g");
  assert.equal(routeWarmFirst("m", [busy, other, cold])?.id, "d");
  assert.equal(routeWarmFirst("m", [busy, other2, other])?.id, "e");
  assert.equal(routeWarmFirst("m", [busy, view("h", "loading", { n: loading })]), undefined);
  assert.equal(routeWarmFirst("m", [view("x", "evicted", { m: ready(99) })]), undefined);
});

test("stateless: instances started --stateless, nothing in the background", () => {
  const p = createPolicy("stateless", "eager");
  assert.equal(p.statelessInstances, true);
  assert.equal(p.sharedWeights, false);
  assert.deepEqual(p.maintain([view("a", "idle", { m: ready(0) })], 1e9, new Demand(1000)), []);
  assert.equal(p.route("m", [view("a", "busy"), view("b", "cold")])?.id, "b");
});

test("keep-alive: unloads a model idle for the TTL, only on instances not serving", () => {
  const p = createPolicy("keep-alive", "cicada", { ttlMs: 1000 });
  const instances = [
    view("a", "idle", { m: ready(0), n: ready(500) }),
    view("b", "busy", { m: ready(0) }),
    view("c", "warm", { m: ready(100) }),
  ];
  assert.deepEqual(p.maintain(instances, 1000, new Demand(1000)), [
    { kind: "unload", instance: "a", model: "m" },
  ]);
  assert.deepEqual(p.maintain(instances, 1100, new Demand(1000)), [
    { kind: "unload", instance: "a", model: "m" },
    { kind: "unload", instance: "c", model: "m" },
  ]);
});

test("preload: free instances pre-load the most demanded uncovered models, empty instances first", () => {
  const p = createPolicy("preload", "cicada", { ttlMs: 10_000, minDemand: 0.5, demandHalfLifeMs: 1000 });
  const demand = new Demand(1000);
  for (let k = 0; k < 3; k++) demand.observe("hot", 900 + k);
  demand.observe("warm", 950);
  demand.observe("stale", -10_000);
  const instances = [
    view("a", "idle", { covered: ready(900) }),
    view("b", "cold"),
    view("c", "busy"),
    view("d", "idle", { hot: ready(900) }),
  ];
  demand.observe("covered", 990);
  // "hot" is loaded on d; "covered" on a: the next is "warm", onto the empty instance b.
  assert.deepEqual(p.maintain(instances, 1000, demand), [{ kind: "load", instance: "b", model: "warm" }]);
  // When d's copy of "hot" expires, the unload comes first and "hot" is no longer covered.
  const later = p.maintain(instances, 10_900, demand);
  assert.deepEqual(later.slice(0, 2), [
    { kind: "unload", instance: "a", model: "covered" },
    { kind: "unload", instance: "d", model: "hot" },
  ]);
  assert.deepEqual(later.slice(2), [], "by then every model's demand has decayed below the threshold");
});

test("demand: a decayed count with the given half-life", () => {
  const d = new Demand(1000);
  d.observe("m", 0);
  d.observe("m", 0);
  assert.equal(d.score("m", 0), 2);
  assert.ok(Math.abs(d.score("m", 1000) - 1) < 1e-12);
  d.observe("n", 1000);
  assert.deepEqual(
    d.ranked(1000).map((r) => r.model),
    ["m", "n"],
  );
  assert.equal(d.score("unknown", 5), 0);
});

test("shared-weights needs a strategy that maps the cached weights", () => {
  const p = createPolicy("shared-weights", "cicada");
  assert.equal(p.sharedWeights, true);
  assert.equal(createPolicy("shared-weights", "mini").sharedWeights, true);
  for (const s of ["eager", "ort-best", "pisel", "preload"] as const) {
    assert.throws(
      () => createPolicy("shared-weights", s),
      (e: unknown) => isCicadaError(e, "E_USAGE") && e.message.includes(`found '${s}'`),
    );
  }
});
