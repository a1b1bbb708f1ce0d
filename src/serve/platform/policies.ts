// The four platform policies behind one interface. A policy decides, and only decides: which instance
// serves a request (`route`), and what to do in the background (`maintain`: unload models idle past the
// TTL, pre-load the models most likely next). The gateway carries the decisions out and the memory ledger
// (pool-memory.ts) may veto a load. Policies see instances through a read-only view, so they are tested
// without processes.
//
// - stateless: instances run `cicada serve --stateless`: every request loads its model and disposes it
//   after answering (the paper's setting); nothing is kept, nothing is done in the background.
// - keep-alive: a model stays loaded on its instance until it has been idle for the TTL, then is unloaded.
// - preload: keep-alive, and free instances opportunistically pre-load the models most likely to be invoked
//   next (InstaInfer): demand is an exponentially decayed count of each model's arrivals.
// - shared-weights: keep-alive on instances that share one copy of each model's weights (Tetris): the
//   MiniLoader cache, whose weight files onnxruntime maps, lives on tmpfs (always resident, shared through
//   the page cache), and memory is accounted as PSS so the shared pages count once.
import { CicadaError } from "../../errors.js";
import type { StrategyName } from "../../config.js";
import type { PolicyName } from "../../workload/replay-runs.js";

/** The lifecycle of an instance (instance-pool.ts owns the transitions). */
export type InstanceState = "cold" | "loading" | "warm" | "busy" | "idle" | "evicted";

/** A model on an instance: being loaded or loaded; `lastUsed` is its last request's end (or its load's). */
export interface ModelSlotView {
  readonly state: "loading" | "ready";
  readonly lastUsed: number;
}

/** What a policy may know of an instance of the pool (a PoolInstance, read-only). */
export interface InstanceView {
  readonly id: string;
  readonly state: InstanceState;
  readonly models: ReadonlyMap<string, ModelSlotView>;
  /** When the instance last finished a request or load (ms). */
  readonly lastUsed: number;
}

/** A background action. */
export type PolicyAction =
  { kind: "unload"; instance: string; model: string } | { kind: "load"; instance: string; model: string };

/** The policy interface. */
export interface Policy {
  readonly name: PolicyName;
  /** Instances are started with `--stateless`. */
  readonly statelessInstances: boolean;
  /** Weights kept resident on tmpfs and shared between instances. */
  readonly sharedWeights: boolean;
  /** The instance to serve a request for `model` now, or undefined to keep the request queued. */
  route(model: string, instances: readonly InstanceView[]): InstanceView | undefined;
  /** Background actions at time `now` given the demand seen so far. */
  maintain(instances: readonly InstanceView[], now: number, demand: Demand): PolicyAction[];
}

/** Policy parameters (times in ms of wall clock: a time-scaled replay divides them). */
export interface PolicyConfig {
  /** keep-alive, preload, shared-weights: a model idle this long is unloaded (default 10 min). */
  ttlMs: number;
  /** preload: half-life of the demand estimate (default 60 s). */
  demandHalfLifeMs: number;
  /** preload: a model is pre-loaded only if its decayed arrival count is at least this (default 0.5). */
  minDemand: number;
}

export const DEFAULT_POLICY_CONFIG: PolicyConfig = {
  ttlMs: 600_000,
  demandHalfLifeMs: 60_000,
  minDemand: 0.5,
};

/** Exponentially decayed arrival counts per model: recent arrivals count 1, older ones less. */
export class Demand {
  private readonly scores = new Map<string, { value: number; at: number }>();
  constructor(private readonly halfLifeMs: number) {}

  /** Records an arrival of `model` at `t`. */
  observe(model: string, t: number): void {
    this.scores.set(model, { value: this.score(model, t) + 1, at: t });
  }

  /** The decayed count of `model` at time `t`. */
  score(model: string, t: number): number {
    const s = this.scores.get(model);
    return s ? s.value * 0.5 ** (Math.max(0, t - s.at) / this.halfLifeMs) : 0;
  }

  /** Models by decreasing score at `t` (ties by name). */
  ranked(t: number): { model: string; score: number }[] {
    return [...this.scores.keys()]
      .map((model) => ({ model, score: this.score(model, t) }))
      .sort((a, b) => b.score - a.score || (a.model < b.model ? -1 : 1));
  }
}

/** An instance that can take a request or a load now. */
const free = (i: InstanceView) => i.state === "cold" || i.state === "warm" || i.state === "idle";

/**
 * Routing shared by every policy: (1) a free instance with the model loaded, the most recently used (so
 * that the others can expire); (2) an instance loading the model (the request joins the load);
 * (3) a cold instance; (4) the free instance used least recently, which loads the model beside its others.
 */
export function routeWarmFirst(model: string, instances: readonly InstanceView[]): InstanceView | undefined {
  const byRecency = (a: InstanceView, b: InstanceView) => b.lastUsed - a.lastUsed;
  const warm = instances.filter((i) => free(i) && i.models.get(model)?.state === "ready").sort(byRecency);
  if (warm[0]) return warm[0];
  const joining = instances.find((i) => i.state === "loading" && i.models.get(model)?.state === "loading");
  if (joining) return joining;
  const cold = instances.find((i) => i.state === "cold");
  if (cold) return cold;
  return instances.filter(free).sort((a, b) => -byRecency(a, b))[0];
}

/** Unloads of models idle for at least `ttlMs` on instances that are not serving. */
function expired(instances: readonly InstanceView[], now: number, ttlMs: number): PolicyAction[] {
  const out: PolicyAction[] = [];
  for (const i of instances) {
    if (!free(i)) continue;
    for (const [model, slot] of i.models)
      if (slot.state === "ready" && now - slot.lastUsed >= ttlMs)
        out.push({ kind: "unload", instance: i.id, model });
  }
  return out;
}

/**
 * InstaInfer's opportunistic pre-loading: each free instance (empty ones first) pre-loads the most demanded
 * model that no free instance has loaded or is loading, if its demand is at least `minDemand`.
 */
function preloads(instances: readonly InstanceView[], now: number, demand: Demand, c: PolicyConfig) {
  const covered = new Set<string>();
  for (const i of instances)
    if (free(i) || i.state === "loading") for (const m of i.models.keys()) covered.add(m);
  const wanted = demand
    .ranked(now)
    .filter((d) => d.score >= c.minDemand && !covered.has(d.model))
    .map((d) => d.model);
  const out: PolicyAction[] = [];
  const candidates = instances.filter(free).sort((a, b) => a.models.size - b.models.size);
  for (const i of candidates) {
    const model = wanted.shift();
    if (!model) break;
    out.push({ kind: "load", instance: i.id, model });
  }
  return out;
}

/** Strategies whose stages onnxruntime creates by path from the cached files, mapping their weights. */
export const MAPPING_STRATEGIES: readonly StrategyName[] = ["mini", "cicada"];

/** The policy `name` with `config`; shared-weights refuses a strategy whose weights cannot be shared. */
export function createPolicy(
  name: PolicyName,
  strategy: StrategyName,
  config: Partial<PolicyConfig> = {},
): Policy {
  const c = { ...DEFAULT_POLICY_CONFIG, ...config };
  if (name === "shared-weights" && !MAPPING_STRATEGIES.includes(strategy)) {
    throw new CicadaError(
      "E_USAGE",
      `--policy shared-weights needs a strategy that maps the cached weight files (${MAPPING_STRATEGIES.join(", ")}), found '${strategy}': the others copy the weights into each instance`,
    );
  }
  const base = { name, route: routeWarmFirst, statelessInstances: false, sharedWeights: false };
  switch (name) {
    case "stateless":
      return { ...base, statelessInstances: true, maintain: () => [] };
    case "keep-alive":
      return { ...base, maintain: (instances, now) => expired(instances, now, c.ttlMs) };
    case "shared-weights":
      return { ...base, sharedWeights: true, maintain: (instances, now) => expired(instances, now, c.ttlMs) };
    case "preload":
      return {
        ...base,
        maintain: (instances, now, demand) => {
          const unloads = expired(instances, now, c.ttlMs);
          // An instance about to unload is not counted as covering its model.
          const gone = new Set(unloads.map((u) => `${u.instance}/${u.model}`));
          const remaining = instances.map((i) => ({
            ...i,
            models: new Map([...i.models].filter(([m]) => !gone.has(`${i.id}/${m}`))),
          }));
          return [...unloads, ...preloads(remaining, now, demand, c)];
        },
      };
  }
}
