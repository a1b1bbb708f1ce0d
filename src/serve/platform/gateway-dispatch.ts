// The gateway's dispatcher: the queue of infer requests waiting for an instance, and the loop that hands
// them out. On every change (a request arrives, an instance frees up, starts or exits, a load or unload
// ends, a periodic tick) it routes each waiting request in arrival order as the policy says, asks the
// memory ledger before any cold start (evicting least recently used idle models when over a limit), and
// carries out the policy's background actions (TTL unloads, pre-loads). It keeps the instances' lifecycle
// and model books through their transitions. A request never waits past its deadline.
import { CicadaError, isCicadaError } from "../../errors.js";
import { now } from "../../metrics/trace.js";
import type { InstancePool } from "./instance-pool.js";
import type { InstanceReply, PoolInstance } from "./pool-instance.js";
import { Demand, type Policy, type PolicyConfig } from "./policies.js";
import type { MemoryLedger } from "./pool-memory.js";

/** An infer request waiting for, or being served by, an instance. */
interface Pending {
  model: string;
  body: Uint8Array;
  headers: Record<string, string>;
  received: number;
  deadline: number;
  /** Why it is waiting for memory, if it is. */
  memoryWait?: string;
  resolve(r: Dispatched): void;
  reject(e: unknown): void;
  timer: NodeJS.Timeout;
}

/** A request's answer from its instance, with where and how long it waited. */
export interface Dispatched {
  reply: InstanceReply;
  instance: string;
  queueMs: number;
  cold: boolean;
}

/** Options of a {@link Dispatcher}. */
export interface DispatcherOptions {
  maxQueue: number;
  timeoutMs: number;
  /** Background tick (default 200 ms). */
  tickMs?: number;
  /** Time allowed to an instance for a pre-load (default 120 s). */
  loadTimeoutMs?: number;
  log?: (line: string) => void;
}

/** Counters of what the dispatcher did. */
export interface DispatchStats {
  received: number;
  rejectedQueueFull: number;
  timedOutInQueue: number;
  refusedMemory: number;
  instanceDeaths: number;
  preloads: number;
  unloads: number;
  evictions: number;
  /** Instances recycled over --instance-memory-mb. */
  recycled: number;
}

export class Dispatcher {
  private readonly queue: Pending[] = [];
  readonly demand: Demand;
  readonly stats: DispatchStats = {
    received: 0,
    rejectedQueueFull: 0,
    timedOutInQueue: 0,
    refusedMemory: 0,
    instanceDeaths: 0,
    preloads: 0,
    unloads: 0,
    evictions: 0,
    recycled: 0,
  };
  private pumping = false;
  private unloading = 0;
  private again = false;
  private closed = false;
  private readonly ticker: NodeJS.Timeout;
  private readonly onChange = () => this.pump();

  constructor(
    private readonly pool: InstancePool,
    private readonly policy: Policy,
    private readonly ledger: MemoryLedger,
    config: PolicyConfig,
    private readonly o: DispatcherOptions,
  ) {
    this.demand = new Demand(config.demandHalfLifeMs);
    pool.on("change", this.onChange);
    this.ticker = setInterval(this.onChange, o.tickMs ?? 200);
    this.ticker.unref();
  }

  /** Requests waiting for an instance. */
  get queued(): number {
    return this.queue.length;
  }

  /** Queues an infer request; resolves with its instance's reply. */
  submit(model: string, body: Uint8Array, headers: Record<string, string>, received: number) {
    this.stats.received++;
    this.demand.observe(model, received);
    if (this.closed) throw new CicadaError("E_UNAVAILABLE", "the platform is shutting down");
    return new Promise<Dispatched>((resolve, reject) => {
      const deadline = received + this.o.timeoutMs;
      const p: Pending = { model, body, headers, received, deadline, resolve, reject, timer: undefined! };
      p.timer = setTimeout(() => this.expire(p), Math.max(0, deadline - now()));
      this.queue.push(p);
      this.pump();
      // A request that could not be handed out at once waits, if there is room.
      if (this.queue.includes(p) && this.queue.length > this.o.maxQueue) {
        this.queue.splice(this.queue.indexOf(p), 1);
        clearTimeout(p.timer);
        this.stats.rejectedQueueFull++;
        reject(
          new CicadaError(
            "E_QUEUE_FULL",
            `the gateway's queue is full: ${this.queue.length} requests wait for an instance (--max-queue ${this.o.maxQueue})`,
          ),
        );
      }
    });
  }

  private expire(p: Pending): void {
    const at = this.queue.indexOf(p);
    if (at < 0) return;
    this.queue.splice(at, 1);
    this.stats.timedOutInQueue++;
    const why = p.memoryWait ? ` waiting for memory (${p.memoryWait})` : " waiting for a free instance";
    p.reject(
      new CicadaError("E_TIMEOUT", `model ${p.model}: ${this.o.timeoutMs} ms passed${why} (--timeout-ms)`),
    );
  }

  /** Runs the dispatch loop (re-entrant calls coalesce into one more pass). */
  pump(): void {
    if (this.pumping) {
      this.again = true;
      return;
    }
    this.pumping = true;
    try {
      do {
        this.again = false;
        this.dispatchQueued();
        this.maintain();
      } while (this.again);
    } finally {
      this.pumping = false;
    }
  }

  /** Whether another instance than `except` has `model` loaded or loading (a further copy shares it). */
  private residentElsewhere(model: string, except: PoolInstance): boolean {
    return this.pool.instances.some((i) => i !== except && i.models.has(model));
  }

  private dispatchQueued(): void {
    for (const p of [...this.queue]) {
      const target = this.policy.route(p.model, this.pool.instances) as PoolInstance | undefined;
      if (!target) continue;
      const slot = target.models.get(p.model);
      if (!slot) {
        const plan = this.ledger.plan(
          target,
          p.model,
          this.pool.instances,
          this.residentElsewhere(p.model, target),
        );
        if (plan.kind === "evict") {
          // One eviction at a time: memory is re-sampled when it ends, then the plan is made again.
          if (this.unloading === 0) {
            this.stats.evictions++;
            this.unload(this.pool.get(plan.action.instance)!, plan.action.model);
          }
          p.memoryWait = `evicting to make room for ${p.model}`;
          continue;
        }
        if (plan.kind === "wait") {
          p.memoryWait = plan.reason;
          continue;
        }
        // An unload under way may make the room: plan again when it ends (it pumps) instead of refusing.
        if (plan.kind === "refuse" && this.unloading > 0) {
          p.memoryWait = plan.reason;
          continue;
        }
        if (plan.kind === "refuse") {
          this.queue.splice(this.queue.indexOf(p), 1);
          clearTimeout(p.timer);
          this.stats.refusedMemory++;
          p.reject(new CicadaError("E_HOST_MEMORY", plan.reason));
          continue;
        }
      }
      this.queue.splice(this.queue.indexOf(p), 1);
      clearTimeout(p.timer);
      void this.forward(p, target);
    }
  }

  private async forward(p: Pending, instance: PoolInstance): Promise<void> {
    const slot = instance.models.get(p.model);
    const cold = slot?.state !== "ready";
    // A request joining a pre-load in progress leaves the ledger's books to that load.
    const ownsLoad = !slot;
    if (ownsLoad) {
      instance.models.set(p.model, { state: "loading", lastUsed: now() });
      this.ledger.beginLoad(instance.id, p.model, this.residentElsewhere(p.model, instance));
    }
    instance.transition("busy", `infer ${p.model}`);
    const queueMs = now() - p.received;
    let ok = false;
    try {
      const reply = await instance.request(
        "POST",
        `/v2/models/${encodeURIComponent(p.model)}/infer`,
        { headers: p.headers, body: p.body },
        // The instance's own --timeout-ms answers first; this bound is for an instance that does not.
        Math.max(1, p.deadline - now()) + 2000,
      );
      ok = reply.status === 200;
      instance.served++;
      if (cold && ok) instance.coldServed++;
      p.resolve({ reply, instance: instance.id, queueMs, cold });
    } catch (e) {
      // An instance that died or broke its connection is killed for sure (the pool replaces it as a death);
      // one that stopped answering is recycled.
      if (isCicadaError(e, "E_INSTANCE_DIED")) {
        this.stats.instanceDeaths++;
        if (instance.state !== "evicted") instance.child.kill("SIGKILL");
      } else if (instance.state !== "evicted" && !instance.stopping) {
        instance.stopping = true;
        instance.replace = true;
        instance.child.kill("SIGKILL");
      }
      p.reject(
        isCicadaError(e, "E_INSTANCE_DIED") || isCicadaError(e, "E_TIMEOUT")
          ? new CicadaError(e.code, `infer of model ${p.model}: ${e.message}`, { cause: e })
          : e,
      );
    } finally {
      if (ownsLoad) void this.ledger.endLoad(instance.id, ok, this.pool.sampleInstance(instance));
      this.settle(instance, p.model, ok);
      this.pump();
    }
  }

  /** Books after a request: the model stays (ready) unless the instance is stateless or the request failed. */
  private settle(instance: PoolInstance, model: string, ok: boolean): void {
    // An instance being killed stays busy until its exit makes it evicted: nothing is routed to it.
    if (instance.state !== "busy" || instance.stopping || instance.child.killed) return;
    if (this.policy.statelessInstances) instance.models.clear();
    else if (ok) instance.models.set(model, { state: "ready", lastUsed: now() });
    else if (instance.models.get(model)?.state !== "ready") instance.models.delete(model);
    instance.lastUsed = now();
    instance.transition(instance.models.size ? "idle" : "cold", ok ? undefined : "request failed");
  }

  /**
   * --instance-memory-mb on free instances: one over it sheds its least recently used model; one over it
   * with no model left (memory its process keeps) is recycled.
   */
  private enforceInstanceLimit(): void {
    const limit = this.ledger.limits.instanceBytes;
    if (limit === undefined) return;
    for (const i of [...this.pool.instances]) {
      if (!["cold", "warm", "idle"].includes(i.state) || this.ledger.instanceBytes(i.id) <= limit) continue;
      const lru = [...i.models]
        .filter(([, s]) => s.state === "ready")
        .sort((a, b) => a[1].lastUsed - b[1].lastUsed)[0];
      if (lru) {
        if (this.unloading === 0) {
          this.stats.evictions++;
          this.unload(i, lru[0]);
        }
      } else if (i.models.size === 0 && i.served > 0 && this.ledger.shouldRecycle(i.id)) {
        this.stats.recycled++;
        const mib = (this.ledger.instanceBytes(i.id) / 2 ** 20).toFixed(0);
        this.pool.recycle(i, `recycled: ${mib} MiB over --instance-memory-mb with no model loaded`);
      }
    }
  }

  /** The policy's background actions. */
  private maintain(): void {
    if (this.closed) return;
    this.enforceInstanceLimit();
    for (const a of this.policy.maintain(this.pool.instances, now(), this.demand)) {
      const instance = this.pool.get(a.instance);
      if (!instance || !["cold", "warm", "idle"].includes(instance.state)) continue;
      if (a.kind === "unload") {
        if (instance.models.get(a.model)?.state === "ready") this.unload(instance, a.model);
        continue;
      }
      if (instance.models.has(a.model) || this.queue.length > 0) continue;
      const plan = this.ledger.plan(
        instance,
        a.model,
        this.pool.instances,
        this.residentElsewhere(a.model, instance),
      );
      if (plan.kind === "go") void this.preload(instance, a.model);
    }
  }

  private unload(instance: PoolInstance, model: string): void {
    this.stats.unloads++;
    this.unloading++;
    const before = this.ledger.instanceBytes(instance.id);
    instance.models.delete(model);
    if (instance.models.size === 0 && instance.state !== "cold")
      instance.transition("cold", `unloaded ${model}`);
    void instance
      .request("POST", `/v2/repository/models/${encodeURIComponent(model)}/unload`, {}, 30_000)
      .then(
        (r) => {
          if (r.status !== 200)
            this.o.log?.(`[gateway] unload of ${model} on ${instance.id}: HTTP ${r.status}`);
        },
        (e: unknown) =>
          this.o.log?.(`[gateway] unload of ${model} on ${instance.id}: ${(e as Error).message}`),
      )
      .finally(() => {
        void this.pool.sampleInstance(instance).then(() => {
          this.unloading--;
          this.ledger.unloaded(instance.id, model, before);
          this.pump();
        });
      });
  }

  private async preload(instance: PoolInstance, model: string): Promise<void> {
    this.stats.preloads++;
    instance.models.set(model, { state: "loading", lastUsed: now() });
    instance.transition("loading", `preload ${model}`);
    this.ledger.beginLoad(instance.id, model, this.residentElsewhere(model, instance));
    let ok = false;
    try {
      const r = await instance.request(
        "POST",
        `/v2/repository/models/${encodeURIComponent(model)}/load`,
        {},
        this.o.loadTimeoutMs ?? 120_000,
      );
      ok = r.status === 200;
      if (!ok) this.o.log?.(`[gateway] preload of ${model} on ${instance.id}: HTTP ${r.status}`);
    } catch (e) {
      this.o.log?.(`[gateway] preload of ${model} on ${instance.id}: ${(e as Error).message}`);
    } finally {
      void this.ledger.endLoad(instance.id, ok, this.pool.sampleInstance(instance));
      if (instance.state !== "evicted") {
        if (ok) instance.models.set(model, { state: "ready", lastUsed: now() });
        else if (instance.models.get(model)?.state === "loading") instance.models.delete(model);
        // A request that joined the load made the instance busy; it settles the state when it ends.
        if (instance.state === "loading") {
          instance.lastUsed = now();
          instance.transition(ok ? "warm" : instance.models.size ? "idle" : "cold");
        }
      }
      this.pump();
    }
  }

  /** Refuses what waits (503) and stops the background work. */
  close(): void {
    this.closed = true;
    clearInterval(this.ticker);
    this.pool.off("change", this.onChange);
    for (const p of this.queue.splice(0)) {
      clearTimeout(p.timer);
      p.reject(new CicadaError("E_UNAVAILABLE", `model ${p.model}: the platform is shutting down`));
    }
  }
}
