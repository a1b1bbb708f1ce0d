// What an inference response says of its own cold start, as the protocol allows (scalar parameters) and
// as HTTP tooling reads it (headers): cold or warm, the strategy, load time, queueing, latency, pipeline
// utilisation and the working and waiting time of the units L, R, A, E.
import { unitTimes, utilization, UNITS } from "../../metrics/trace.js";
import type { HostedRun } from "./model-host.js";

const round = (ms: number) => Math.round(ms * 1000) / 1000;

/** Response parameters (`cicada_*`) and headers (`x-cicada-cold`, `server-timing`) of a run. */
export function runFacts(
  run: HostedRun,
  latencyMs: number,
): { parameters: Record<string, string | number | boolean | null>; headers: Record<string, string> } {
  const units = unitTimes(run.trace);
  const unitJson = Object.fromEntries(
    UNITS.map((u) => [u, { workMs: round(units[u].workMs), waitMs: round(units[u].waitMs) }]),
  );
  const timing = [
    `queue;dur=${run.queueMs.toFixed(2)}`,
    ...(run.loadMs !== null ? [`load;dur=${run.loadMs.toFixed(2)}`] : []),
    ...UNITS.map((u) => `${u};dur=${units[u].workMs.toFixed(2)}`),
    `total;dur=${latencyMs.toFixed(2)}`,
  ];
  return {
    parameters: {
      cicada_cold: run.cold,
      cicada_strategy: run.strategy,
      cicada_load_ms: run.loadMs === null ? null : round(run.loadMs),
      cicada_queue_ms: round(run.queueMs),
      cicada_latency_ms: round(latencyMs),
      cicada_utilization: round(utilization(run.trace)),
      // The protocol allows only scalar parameters: the per-unit table travels as a JSON string.
      cicada_units: JSON.stringify(unitJson),
    },
    headers: { "x-cicada-cold": run.cold ? "1" : "0", "server-timing": timing.join(", ") },
  };
}
