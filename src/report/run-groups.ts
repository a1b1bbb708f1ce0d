// What the report's charts and tables share: runs grouped by scenario × cache (one report section and one
// set of figures each), the strategy and unit colours used in every figure, and the titles that name the
// scenario, the model and the machine on every figure.
import type { Unit } from "../metrics/trace.js";
import type { StrategyName } from "../config.js";
import type { BenchRun } from "./bench-data.js";
import type { LegendItem } from "./svg-axes.js";

/** One colour per strategy, the same in every figure (Okabe–Ito; eager, the baseline, in grey). */
export const STRATEGY_COLOURS: Record<StrategyName, string> = {
  eager: "#8C8C8C",
  "ort-best": "#56B4E9",
  pisel: "#E69F00",
  mini: "#009E73",
  preload: "#CC79A7",
  cicada: "#D55E00",
};

/** One colour per unit (L construct, R retrieve, A apply, E execute). */
export const UNIT_COLOURS: Record<Unit, string> = { L: "#0072B2", R: "#E69F00", A: "#009E73", E: "#CC79A7" };
/** What each unit does, for legends and tooltips. */
export const UNIT_NAMES: Record<Unit, string> = { L: "construct", R: "retrieve", A: "apply", E: "execute" };

/** A chart file of the report. */
export interface Chart {
  /** File name under charts/. */
  file: string;
  /** The paper figure it regenerates. */
  figure: string;
  title: string;
  svg: string;
  scenario: string;
  cache: string;
  model?: string;
  strategy?: StrategyName;
}

/** Runs that share a scenario and cache state: one section of the report, one set of figures. */
export interface RunGroup {
  scenario: "reload" | "fresh";
  cache: "warm" | "cold";
  runs: BenchRun[];
}

/** "reload, cache warm". */
export function scenarioLabel(g: { scenario: string; cache: string }): string {
  return `${g.scenario}, cache ${g.cache}`;
}

/** Groups runs by scenario × cache (reload/warm, fresh/warm, reload/cold, fresh/cold), models in input order. */
export function groupRuns(runs: readonly BenchRun[]): RunGroup[] {
  const order = ["reload/warm", "fresh/warm", "reload/cold", "fresh/cold"];
  const groups = new Map<string, RunGroup>();
  for (const run of runs) {
    const { scenario, cache } = run.summary;
    const key = `${scenario}/${cache}`;
    if (!groups.has(key)) groups.set(key, { scenario, cache, runs: [] });
    groups.get(key)!.runs.push(run);
  }
  return [...groups.entries()].sort((a, b) => order.indexOf(a[0]) - order.indexOf(b[0])).map(([, g]) => g);
}

/** A file-name-safe form of a model name. */
export function slug(name: string): string {
  return name.replace(/[^\w.-]+/g, "_");
}

/** Bytes in a mebibyte: memory is charted in MiB. */
export const MiB = 2 ** 20;
/** A value label: no decimals from 100 up, one below. */
export const fixed = (v: number) => (Math.abs(v) >= 100 ? v.toFixed(0) : v.toFixed(1));

/** The strategies a run measured, in its order. */
export function strategiesOf(run: BenchRun): StrategyName[] {
  return run.summary.results.map((r) => r.strategy);
}

/** A figure's subtitle: scenario and cache, what is shown, counted cold starts, the machine. */
export function subtitle(g: RunGroup, what: string): string {
  const repeats = [...new Set(g.runs.map((r) => r.summary.repeat))].join("/");
  const m = g.runs[0]!.summary.machine;
  const plural = repeats === "1" ? "" : "s";
  return `Scenario ${g.scenario}, cache ${g.cache} · ${what} · ${repeats} counted cold start${plural} per strategy · ${m.cpuModel}, ${m.cores} cores, onnxruntime ${m.ortVersion}`;
}

/** A panel's title: the model, its stages and its weight bytes. */
export function modelTitle(run: BenchRun): string {
  const s = run.summary;
  return `${s.model} (${s.stages} stages, ${(s.weightBytes / MiB).toFixed(1)} MiB of weights)`;
}

/** Legend entries for strategies, drawn in `style`. */
export const strategyLegend = (
  strategies: readonly StrategyName[],
  style: LegendItem["style"],
): LegendItem[] => strategies.map((s) => ({ label: s, colour: STRATEGY_COLOURS[s], style }));

/** Every strategy measured in the group, in order of first appearance. */
export function allStrategies(g: RunGroup): StrategyName[] {
  return [...new Set(g.runs.flatMap(strategiesOf))];
}
