// An invocation trace, whatever its source (the Azure Functions 2021 or 2019 files, or the synthetic
// generator): function invocations on one clock, and the steps that turn it into a replay's arrivals —
// cut to the first minutes, functions assigned to models at random (seeded), time compressed, bounded.
// Every parser and the generator produce this one shape, so the replayer never knows where a trace came from.
import { CicadaError } from "../errors.js";
import { SeededRandom } from "../util/seeded-random.js";

/** One invocation: when it arrived (ms since the trace's start) and which function it invoked. */
export interface Invocation {
  t: number;
  func: string;
}

/** A trace: invocations sorted by arrival time, and what produced them. */
export interface InvocationTrace {
  /** e.g. `azure-2021:<file>`, `azure-2019:<file>`, `synthetic:seed=0`. */
  source: string;
  invocations: Invocation[];
  /** Length of the trace in ms (whole minutes for per-minute sources). */
  spanMs: number;
}

/** An arrival of a replay: when to send it (ms after the replay starts) and to which model. */
export interface Arrival {
  t: number;
  func: string;
  model: string;
}

/** One minute in ms: the unit of the per-minute traces. */
export const MINUTE_MS = 60_000;

/** A trace of `invocations` (sorted by time here, stably); the span defaults to whole minutes. */
export function normalizeTrace(source: string, invocations: Invocation[], spanMs?: number): InvocationTrace {
  const sorted = [...invocations].sort((a, b) => a.t - b.t);
  const last = sorted.length ? sorted[sorted.length - 1]!.t : 0;
  return { source, invocations: sorted, spanMs: spanMs ?? Math.ceil((last + 1) / MINUTE_MS) * MINUTE_MS };
}

/** The first `minutes` minutes of a trace. */
export function cutTrace(trace: InvocationTrace, minutes: number): InvocationTrace {
  if (!(minutes > 0)) throw new CicadaError("E_USAGE", `--minutes must be positive, found ${minutes}`);
  const end = minutes * MINUTE_MS;
  return {
    source: trace.source,
    invocations: trace.invocations.filter((i) => i.t < end),
    spanMs: Math.min(trace.spanMs, end),
  };
}

/** Keeps the `count` most invoked functions (ties broken by name, so the choice is reproducible). */
export function topFunctions(trace: InvocationTrace, count: number): InvocationTrace {
  const counts = functionCounts(trace);
  const keep = new Set(
    [...counts.entries()]
      .sort((a, b) => b[1] - a[1] || (a[0] < b[0] ? -1 : 1))
      .slice(0, count)
      .map(([f]) => f),
  );
  return { ...trace, invocations: trace.invocations.filter((i) => keep.has(i.func)) };
}

/** Invocations per function. */
export function functionCounts(trace: InvocationTrace): Map<string, number> {
  const counts = new Map<string, number>();
  for (const i of trace.invocations) counts.set(i.func, (counts.get(i.func) ?? 0) + 1);
  return counts;
}

/**
 * Assigns each function to one of `models` at random: the draw of a function depends only on the seed and
 * its name (its own stream), so it does not change when other functions are added or the trace is cut.
 */
export function assignModels(funcs: Iterable<string>, models: readonly string[], seed: number) {
  if (models.length === 0) throw new CicadaError("E_USAGE", "--models must name at least one model");
  const out = new Map<string, string>();
  for (const f of funcs) {
    const r = new SeededRandom(seed, `model-of:${f}`).next();
    out.set(f, models[Math.floor(r * models.length)]!);
  }
  return out;
}

/** Options of {@link arrivalsOf}. */
export interface ArrivalOptions {
  models: readonly string[];
  seed: number;
  /** Time compression: 20 replays an hour in 3 minutes. */
  timeScale: number;
  /** At most this many arrivals (the earliest). */
  maxInvocations: number;
}

/** The replay's arrivals: each invocation mapped to its function's model, at t / timeScale. */
export function arrivalsOf(trace: InvocationTrace, o: ArrivalOptions): Arrival[] {
  if (!(o.timeScale > 0))
    throw new CicadaError("E_USAGE", `--time-scale must be positive, found ${o.timeScale}`);
  const kept = trace.invocations.slice(0, o.maxInvocations);
  const modelOf = assignModels(new Set(kept.map((i) => i.func)), o.models, o.seed);
  return kept.map((i) => ({ t: i.t / o.timeScale, func: i.func, model: modelOf.get(i.func)! }));
}

/** The shape of a trace: counts per minute and per function (for reports and tests). */
export interface TraceStats {
  source: string;
  invocations: number;
  functions: number;
  minutes: number;
  perMinute: number[];
  /** Minutes with no invocation. */
  quietMinutes: number;
  /** Share of invocations of the most invoked function. */
  topFunctionShare: number;
}

/** Counts per minute and per function. */
export function traceStats(trace: InvocationTrace): TraceStats {
  const minutes = Math.max(1, Math.ceil(trace.spanMs / MINUTE_MS));
  const perMinute = new Array<number>(minutes).fill(0);
  for (const i of trace.invocations) perMinute[Math.min(minutes - 1, Math.floor(i.t / MINUTE_MS))]!++;
  const counts = [...functionCounts(trace).values()];
  return {
    source: trace.source,
    invocations: trace.invocations.length,
    functions: counts.length,
    minutes,
    perMinute,
    quietMinutes: perMinute.filter((n) => n === 0).length,
    topFunctionShare: counts.length ? Math.max(...counts) / trace.invocations.length : 0,
  };
}
