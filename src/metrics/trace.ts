// The event trace of one request: every unit task (L construct, R retrieve, A apply, E execute) of every
// stage, on one clock shared by all threads. Every metric of the evaluation is computed from it.
import { performance } from "node:perf_hooks";
import { DEFAULTS, type Hazard } from "../config.js";
import { dependenciesOf } from "./pipeline-rule.js";

/** The paper's four units. */
export type Unit = "L" | "R" | "A" | "E";
export const UNITS: readonly Unit[] = ["L", "R", "A", "E"];

/** One unit task. Times are milliseconds on the shared clock (see {@link now}). */
export interface TraceEvent {
  unit: Unit;
  stage: number;
  /** Thread that did the work: "main" or "worker-N". */
  worker: string;
  start: number;
  end: number;
  /** Bytes moved (R) or bound (A); 0 where it does not apply. */
  bytes: number;
}

/** A request's trace: its events and the request's own start and end. */
export interface Trace {
  requestStart: number;
  requestEnd: number;
  events: TraceEvent[];
  /** The hazard rule the loads in this trace were ordered by (default strict). */
  hazard?: Hazard;
  /**
   * Bytes the process read from storage while the request ran (proc-io.ts; reads of every concurrent
   * request included): a cold start's weights, or what a warm request of a model larger than memory re-read.
   */
  storageReadBytes?: number;
}

/**
 * Milliseconds on a clock shared by every thread of the process. NOTE: performance.now() counts from each
 * thread's own time origin, so worker timestamps must be shifted by timeOrigin to be comparable.
 */
export function now(): number {
  return performance.timeOrigin + performance.now();
}

/** Merges intervals and returns the total length they cover. */
export function unionLength(intervals: readonly { start: number; end: number }[]): number {
  const sorted = [...intervals].filter((i) => i.end > i.start).sort((a, b) => a.start - b.start);
  let total = 0;
  let curStart = -Infinity;
  let curEnd = -Infinity;
  for (const i of sorted) {
    if (i.start > curEnd) {
      if (curEnd > curStart) total += curEnd - curStart;
      curStart = i.start;
      curEnd = i.end;
    } else if (i.end > curEnd) curEnd = i.end;
  }
  if (curEnd > curStart) total += curEnd - curStart;
  return total;
}

/**
 * Pipeline utilisation as the paper defines it: the union of all units' active intervals divided by the
 * pipeline's total time (first task start to last task end). 1 means some unit was always working.
 */
export function utilization(trace: Trace): number {
  if (trace.events.length === 0) return 0;
  const start = Math.min(...trace.events.map((e) => e.start));
  const end = Math.max(...trace.events.map((e) => e.end));
  return end > start ? unionLength(trace.events) / (end - start) : 1;
}

/** Working and waiting time of one unit, in milliseconds. */
export interface UnitTimes {
  workMs: number;
  waitMs: number;
}

/**
 * The time each unit task became ready: when every task it depends on under the pipeline rule
 * (pipeline-rule.ts) had ended. A task whose dependency was not recorded counts from the request start.
 */
function readyTime(
  e: TraceEvent,
  byKey: Map<string, TraceEvent>,
  requestStart: number,
  hazard: Hazard,
): number {
  // Strategies whose construction binds the weights in one call record it as L only (no A task).
  const applied = byKey.has(`A${e.stage}`);
  const deps = dependenciesOf(e, hazard, applied);
  return Math.max(requestStart, ...deps.map((d) => byKey.get(`${d.unit}${d.stage}`)?.end ?? requestStart));
}

/**
 * Per-unit working time (sum of task durations) and waiting time (sum over tasks of start minus the time
 * the task became ready under the trace's hazard rule), as in the paper's Fig. 12.
 */
export function unitTimes(trace: Trace): Record<Unit, UnitTimes> {
  const hazard = trace.hazard ?? DEFAULTS.hazard;
  const byKey = new Map<string, TraceEvent>();
  for (const e of trace.events) {
    // Several tasks of one unit and stage (e.g. R in chunks) merge into their envelope.
    const key = `${e.unit}${e.stage}`;
    const prev = byKey.get(key);
    byKey.set(
      key,
      prev ? { ...prev, start: Math.min(prev.start, e.start), end: Math.max(prev.end, e.end) } : e,
    );
  }
  const out = Object.fromEntries(UNITS.map((u) => [u, { workMs: 0, waitMs: 0 }])) as Record<Unit, UnitTimes>;
  for (const e of trace.events) out[e.unit].workMs += e.end - e.start;
  for (const e of byKey.values()) {
    out[e.unit].waitMs += Math.max(0, e.start - readyTime(e, byKey, trace.requestStart, hazard));
  }
  return out;
}
