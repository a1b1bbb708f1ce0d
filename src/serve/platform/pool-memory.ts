// The platform's memory ledger: what each instance uses (sampled from /proc every ~100 ms), what the host
// uses, and whether a load may start under --host-memory-mb and --instance-memory-mb. A load's cost is
// learned: the rise of the instance's PSS from the start of the load to its sampled peak, per model, kept
// apart for a model's first copy on the host and for further copies (which share its mapped weights), so
// sharing shows in the decisions as it does in /proc. Until a model was seen loading, its cost is guessed
// from its weight bytes. An unload may not lower the instance's PSS (malloc keeps freed memory for reuse):
// what it did not give back is kept as the instance's slack, which its next load uses before new memory.
// The ledger decides; the gateway carries out its evictions.
//
// Host memory = Σ over instances of (PSS − PSS of shmem) + the larger of Σ PSS of shmem and the bytes
// pinned on tmpfs: weight files kept on tmpfs (shared-weights) are host memory whether or not an instance
// maps them, and count once. Page cache of disk files is not counted: the kernel reclaims it.
import type { ProcessMemory } from "../../metrics/proc-memory.js";
import type { InstanceView, PolicyAction } from "./policies.js";

/** Limits in bytes (undefined: none). */
export interface MemoryLimits {
  hostBytes?: number;
  instanceBytes?: number;
}

/** The ledger's answer to "may this load start?". */
export type LoadPlan =
  | { kind: "go" }
  | { kind: "evict"; action: PolicyAction & { kind: "unload" } }
  | { kind: "wait"; reason: string }
  | { kind: "refuse"; reason: string };

interface LoadInFlight {
  model: string;
  key: string;
  need: number;
  baseline: number;
  peak: number;
  /** The load may reuse memory freed in the process before (then its rise teaches nothing). */
  reused: boolean;
}

const MiB = 2 ** 20;
const mib = (b: number) => `${(b / MiB).toFixed(0)} MiB`;

/** A memory ledger of one pool. */
export class MemoryLedger {
  private readonly current = new Map<string, ProcessMemory>();
  private readonly loads = new Map<string, LoadInFlight>();
  private readonly learned = new Map<string, number>();
  /** Per instance: its PSS at its first sample (an empty instance). */
  private readonly first = new Map<string, number>();
  /** Per instance: memory its unloads freed that its PSS still shows (malloc keeps it for reuse). */
  private readonly slack = new Map<string, number>();
  /** Bytes of weight files pinned on tmpfs (shared-weights). */
  pinnedBytes = 0;

  constructor(
    readonly limits: MemoryLimits,
    /** The guess for a model never seen loading. */
    private readonly guess: (model: string) => number,
  ) {}

  /** Records a sample of instance `id`. */
  update(id: string, memory: ProcessMemory): void {
    if (!this.first.has(id)) this.first.set(id, memory.pssBytes);
    this.current.set(id, memory);
    const load = this.loads.get(id);
    if (load) load.peak = Math.max(load.peak, memory.pssBytes);
  }

  /** Forgets an instance (it exited). */
  remove(id: string): void {
    this.current.delete(id);
    this.loads.delete(id);
    this.slack.delete(id);
    this.first.delete(id);
  }

  /**
   * Should free instance `id`, holding no model, be recycled? Only if it is over the instance limit now and
   * was not at its start (a limit below an empty instance's size would recycle instances forever).
   */
  shouldRecycle(id: string): boolean {
    const limit = this.limits.instanceBytes;
    const first = this.first.get(id);
    return limit !== undefined && first !== undefined && first <= limit && this.instanceBytes(id) > limit;
  }

  /** The last sample of instance `id`. */
  memoryOf(id: string): ProcessMemory | undefined {
    return this.current.get(id);
  }

  /** PSS of instance `id` (0 before its first sample). */
  instanceBytes(id: string): number {
    return this.current.get(id)?.pssBytes ?? 0;
  }

  /** Host memory in use (see the header). */
  hostBytes(): number {
    let unshared = 0;
    let shmem = 0;
    for (const m of this.current.values()) {
      unshared += m.pssBytes - m.pssShmemBytes;
      shmem += m.pssShmemBytes;
    }
    return unshared + Math.max(shmem, this.pinnedBytes);
  }

  /** Σ RSS of the instances: what accounting without sharing would charge. */
  rssSumBytes(): number {
    let sum = 0;
    for (const m of this.current.values()) sum += m.rssBytes;
    return sum;
  }

  /** Σ RssAnon of the instances: their private memory. */
  anonSumBytes(): number {
    let sum = 0;
    for (const m of this.current.values()) sum += m.rssAnonBytes;
    return sum;
  }

  private static key(model: string, copy: boolean): string {
    return `${model}|${copy ? "copy" : "first"}`;
  }

  /** The expected PSS rise of loading `model` (`copy`: it is loaded elsewhere on the host already). */
  estimate(model: string, copy: boolean): number {
    return (
      this.learned.get(MemoryLedger.key(model, copy)) ??
      this.learned.get(MemoryLedger.key(model, false)) ??
      this.guess(model)
    );
  }

  /** The learned cost of loading `model` (undefined: never seen loading). */
  learnedBytes(model: string, copy: boolean): number | undefined {
    return this.learned.get(MemoryLedger.key(model, copy));
  }

  /** What loading `model` on instance `id` adds to the host: its estimate less the instance's slack. */
  needOn(id: string, model: string, copy: boolean): number {
    return Math.max(0, this.estimate(model, copy) - (this.slack.get(id) ?? 0));
  }

  /** A load (or a cold request) of `model` starts on instance `id`. */
  beginLoad(id: string, model: string, copy: boolean): void {
    const baseline = this.instanceBytes(id);
    const key = MemoryLedger.key(model, copy);
    const need = this.needOn(id, model, copy);
    const slack = this.slack.get(id) ?? 0;
    this.slack.set(id, Math.max(0, slack - this.estimate(model, copy)));
    this.loads.set(id, { model, key, need, baseline, peak: baseline, reused: slack > 0 });
  }

  /**
   * An unload of `model` on `id` ended; `beforeBytes` is the instance's PSS before it. What the model took
   * and the PSS did not give back stays as slack that the instance's next load reuses.
   */
  unloaded(id: string, model: string, beforeBytes: number): void {
    const freed = Math.max(0, beforeBytes - this.instanceBytes(id));
    const footprint = this.estimate(model, false);
    this.slack.set(id, (this.slack.get(id) ?? 0) + Math.max(0, footprint - freed));
  }

  /**
   * The load on `id` ended (`ok`: it completed, so its cost is learned from the samples, the last of them
   * `sampled`: a fresh sample of the instance taken now, since a short load may fall between two periodic ones).
   */
  async endLoad(id: string, ok: boolean, sampled: Promise<void> = Promise.resolve()): Promise<void> {
    const load = this.loads.get(id);
    this.loads.delete(id);
    if (!load || !ok || load.reused) return;
    await sampled;
    const rise = Math.max(0, Math.max(load.peak, this.instanceBytes(id)) - load.baseline);
    const prev = this.learned.get(load.key);
    this.learned.set(load.key, prev === undefined ? rise : (prev + rise) / 2);
  }

  /** Memory promised to loads in flight beyond what their instances show already. */
  reservedBytes(): number {
    let sum = 0;
    for (const [id, l] of this.loads) sum += Math.max(0, l.need - (this.instanceBytes(id) - l.baseline));
    return sum;
  }

  /**
   * May `model` start loading on `target` now? Over a limit, the least recently used ready model of a free
   * instance is evicted first (one at a time: the gateway re-plans after each unload); with nothing to
   * evict, wait while something is in flight (it may free memory), else refuse.
   */
  plan(target: InstanceView, model: string, instances: readonly InstanceView[], copy: boolean): LoadPlan {
    const need = this.needOn(target.id, model, copy);
    // The target's own models first (what it frees, it reuses), then by least recent use.
    const lru = (views: readonly InstanceView[]) =>
      views
        .filter((i) => i.state === "cold" || i.state === "warm" || i.state === "idle" || i.id === target.id)
        .flatMap((i) =>
          [...i.models]
            .filter(([m, s]) => s.state === "ready" && !(i.id === target.id && m === model))
            .map(([m, s]) => ({ instance: i.id, model: m, lastUsed: s.lastUsed, own: i.id === target.id })),
        )
        .sort((a, b) => Number(b.own) - Number(a.own) || a.lastUsed - b.lastUsed)[0];
    const { instanceBytes: perInstance, hostBytes: host } = this.limits;
    if (perInstance !== undefined && this.instanceBytes(target.id) + need > perInstance) {
      const own = lru([target]);
      if (own) return { kind: "evict", action: { kind: "unload", instance: own.instance, model: own.model } };
      return {
        kind: "refuse",
        reason: `instance ${target.id}: loading ${model} needs ~${mib(need)}, the instance uses ${mib(this.instanceBytes(target.id))} of its ${mib(perInstance)} (--instance-memory-mb)`,
      };
    }
    if (host !== undefined) {
      const used = this.hostBytes() + this.reservedBytes();
      // A load its instance's slack covers adds nothing: it may go even if the host drifted over the limit.
      if (need > 0 && used + need > host) {
        const victim = lru(instances);
        if (victim)
          return {
            kind: "evict",
            action: { kind: "unload", instance: victim.instance, model: victim.model },
          };
        const reason = `host memory: loading ${model} needs ~${mib(need)}, ${mib(used)} of ${mib(host)} in use or promised (--host-memory-mb), nothing idle to evict`;
        const inFlight =
          this.loads.size > 0 || instances.some((i) => i.state === "busy" || i.state === "loading");
        return inFlight ? { kind: "wait", reason } : { kind: "refuse", reason };
      }
    }
    return { kind: "go" };
  }
}
