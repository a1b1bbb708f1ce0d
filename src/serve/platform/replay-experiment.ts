// A replay experiment: the same arrivals replayed once per policy × strategy, each on a fresh platform
// (new instance processes, every model cold), one after the other so that runs do not share the machine.
// Each run keeps its request records, the memory timeline sampled during it, the dispatcher's counters and
// every instance's lifecycle; `cicada replay` reports them (src/report/replay-report.ts). The workload
// (traces, arrivals, the open-loop replayer, the summary) is src/workload/; this drives the platform with it.
import { loadavg } from "node:os";
import { openBundle } from "../../format/bundle.js";
import { describeMachine, type Machine } from "../../metrics/machine.js";
import { now } from "../../metrics/trace.js";
import { ORT_VERSION } from "../../util/ort-version.js";
import { replayArrivals, type InferRequestBytes, type RequestRecord } from "../../workload/replay.js";
import type { RunSpec } from "../../workload/replay-runs.js";
import { summarizeReplay, type ReplaySummary } from "../../workload/replay-summary.js";
import type { Arrival, TraceStats } from "../../workload/trace-invocations.js";
import type { DispatchStats } from "./gateway-dispatch.js";
import type { MemoryPoint } from "./instance-pool.js";
import { startPlatform } from "./platform.js";
import type { InstanceState } from "./policies.js";
import { binaryInferRequest } from "./replay-inputs.js";

/** What every run of an experiment shares. */
export interface ReplayConfig {
  trace: TraceStats;
  arrivals: Arrival[];
  timeScale: number;
  models: { name: string; bundleDir: string }[];
  runs: RunSpec[];
  instances: number;
  /** keep-alive TTL in trace time (divided by the time scale on the platform). */
  ttlS: number;
  hostMemoryBytes?: number;
  instanceMemoryBytes?: number;
  maxWallMs: number;
  maxQueue: number;
  timeoutMs: number;
  workers?: number;
  cacheRoot?: string;
  seed: number;
}

/** How an instance of a run spent its life. */
export interface InstanceLifecycle {
  id: string;
  served: number;
  coldServed: number;
  transitions: number;
  timeInMs: Record<InstanceState, number>;
  end: string;
}

/** One replayed run. */
export interface ReplayRun extends RunSpec {
  summary: ReplaySummary;
  stats: DispatchStats;
  wallMs: number;
  instances: InstanceLifecycle[];
  records: RequestRecord[];
  /** Memory sampled during the replay; `t` in ms since its start. */
  timeline: MemoryPoint[];
  /** 1-minute load average when the run started (the machine is shared). */
  loadAverage1m: number;
}

/** An experiment's result. */
export interface ReplayResult {
  config: Omit<ReplayConfig, "arrivals" | "runs">;
  machine: Machine;
  runs: ReplayRun[];
}

/** Progress and log sinks of {@link runReplays}. */
export interface ReplayHooks {
  progress?: (line: string) => void;
  log?: (line: string) => void;
}

async function runOne(
  c: ReplayConfig,
  spec: RunSpec,
  requests: Map<string, InferRequestBytes>,
  hooks: ReplayHooks,
) {
  const label = `${spec.policy} x ${spec.strategy}`;
  const loadAverage1m = loadavg()[0]!;
  hooks.progress?.(`${label}: starting ${c.instances} instance(s)`);
  const platform = await startPlatform({
    bundles: c.models.map((m) => m.bundleDir),
    instances: c.instances,
    policy: spec.policy,
    strategy: spec.strategy,
    policyConfig: { ttlMs: (c.ttlS * 1000) / c.timeScale, demandHalfLifeMs: 60_000 / c.timeScale },
    ...(c.hostMemoryBytes !== undefined ? { hostMemoryBytes: c.hostMemoryBytes } : {}),
    ...(c.instanceMemoryBytes !== undefined ? { instanceMemoryBytes: c.instanceMemoryBytes } : {}),
    maxQueue: c.maxQueue,
    timeoutMs: c.timeoutMs,
    maxBodyBytes: Math.max(...[...requests.values()].map((r) => r.body.byteLength)) + (1 << 20),
    ...(c.workers ? { workers: c.workers } : {}),
    ...(c.cacheRoot ? { cacheRoot: c.cacheRoot } : {}),
    ...(hooks.log ? { log: hooks.log } : {}),
  });
  try {
    const total = c.arrivals.filter((a) => a.t < c.maxWallMs).length;
    let nextReport = 0;
    let lastReport = now();
    const t0 = now();
    const { records, wallMs } = await replayArrivals({
      url: platform.url,
      arrivals: c.arrivals,
      requests,
      maxWallMs: c.maxWallMs,
      drainMs: c.timeoutMs + 5000,
      onRecord: (_r, done) => {
        if (done >= nextReport || now() - lastReport > 10_000 || done === total) {
          nextReport = done + Math.ceil(total / 10);
          lastReport = now();
          const host = (platform.ledger.hostBytes() / 2 ** 20).toFixed(0);
          hooks.progress?.(
            `${label}: ${done}/${total} answered, ${platform.dispatcher.queued} queued, host memory ${host} MiB, ${((now() - t0) / 1000).toFixed(0)} s`,
          );
        }
      },
    });
    const timeline = platform.pool.timeline
      .filter((p) => p.t >= t0 && p.t <= t0 + wallMs)
      .map((p) => ({ ...p, t: p.t - t0 }));
    const instances = platform.pool.history.map((i) => ({
      id: i.id,
      served: i.served,
      coldServed: i.coldServed,
      transitions: i.history.length - 1,
      timeInMs: { ...i.timeIn },
      end: i.history[i.history.length - 1]!.reason ?? i.state,
    }));
    return {
      ...spec,
      summary: summarizeReplay(records, timeline),
      stats: { ...platform.dispatcher.stats },
      wallMs,
      instances,
      records,
      timeline,
      loadAverage1m,
    };
  } finally {
    await platform.close();
  }
}

/** Replays `config.arrivals` once per run spec, in order. */
export async function runReplays(config: ReplayConfig, hooks: ReplayHooks = {}): Promise<ReplayResult> {
  const requests = new Map<string, InferRequestBytes>();
  for (const m of config.models) {
    const { manifest } = await openBundle(m.bundleDir);
    requests.set(m.name, binaryInferRequest(manifest, config.seed));
  }
  const runs: ReplayRun[] = [];
  for (const spec of config.runs) runs.push(await runOne(config, spec, requests, hooks));
  const rest: Partial<ReplayConfig> = { ...config };
  delete rest.arrivals;
  delete rest.runs;
  return { config: rest as ReplayResult["config"], machine: describeMachine(ORT_VERSION), runs };
}
