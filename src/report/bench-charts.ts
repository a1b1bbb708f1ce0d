// The paper's evaluation figures regenerated from `cicada bench` data, one set per scenario × cache:
// latency (Fig. 9), peak memory (Fig. 10), per-unit working and waiting time (Fig. 12) and pipeline
// utilisation (Fig. 13) here; those that need every cold start's raw data in raw-charts.ts. Every figure
// names its scenario and cache; one model is one panel, with its own scale.
import { UNITS, utilization } from "../metrics/trace.js";
import { countedColdStarts, type BenchRun } from "./bench-data.js";
import { PAPER, TARGETS } from "./paper-figures.js";
import { cosineFigure, ganttCharts, memoryTimeFigure, occupancyFigure } from "./raw-charts.js";
import {
  fixed,
  groupRuns,
  MiB,
  modelTitle,
  scenarioLabel,
  STRATEGY_COLOURS,
  subtitle,
  UNIT_COLOURS,
  UNIT_NAMES,
  type Chart,
  type RunGroup,
} from "./run-groups.js";
import type { Panel } from "./svg-chart.js";
import { figure } from "./svg-figure.js";
import { categoryPanel, type CategoryItem } from "./svg-panels.js";

function latencyFigure(g: RunGroup): string {
  const panels: Panel[] = g.runs.map((run) =>
    categoryPanel({
      title: modelTitle(run),
      yLabel: "cold-start latency (ms)",
      groups: run.summary.results.map((r) => ({
        label: r.strategy,
        items: [
          {
            kind: "bar",
            value: r.latencyMedianMs,
            low: r.latencyP10Ms,
            high: r.latencyP90Ms,
            colour: STRATEGY_COLOURS[r.strategy],
            label: fixed(r.latencyMedianMs),
            tooltip: `${r.strategy}: median ${r.latencyMedianMs.toFixed(1)} ms, p10 ${r.latencyP10Ms.toFixed(1)}, p90 ${r.latencyP90Ms.toFixed(1)}`,
          },
        ],
      })),
      refLines: [
        { value: run.summary.warmRunMedianMs, label: `floor ${fixed(run.summary.warmRunMedianMs)} ms` },
      ],
    }),
  );
  return figure({
    title: `Cold-start latency per model and strategy (Fig. 9) — ${scenarioLabel(g)}`,
    subtitle: subtitle(g, "request received to response complete"),
    legend: [
      { label: "median (bar)", colour: "#8C8C8C" },
      { label: "p10–p90 (whisker)", colour: "#222222", style: "line" },
      { label: "floor: warm run of eager (model loaded)", colour: "#222222", style: "dash" },
    ],
    panels,
    columns: 3,
    panelWidth: 400,
    panelHeight: 330,
  });
}

function memoryFigure(g: RunGroup): string {
  const panels = g.runs.map((run) =>
    categoryPanel({
      title: modelTitle(run),
      yLabel: "peak memory of the cold start (MiB)",
      groups: run.summary.results.map((r) => ({
        label: r.strategy,
        items: [
          {
            kind: "bar",
            value: r.peakRssBytes / MiB,
            marker: r.baselineRssBytes / MiB,
            colour: STRATEGY_COLOURS[r.strategy],
            label: (r.peakRssBytes / MiB).toFixed(0),
            tooltip: `${r.strategy}: peak RSS ${(r.peakRssBytes / MiB).toFixed(1)} MiB (${(r.baselineRssBytes / MiB).toFixed(1)} MiB when the request arrived)`,
          },
          {
            kind: "bar",
            value: r.peakRssAnonBytes / MiB,
            colour: STRATEGY_COLOURS[r.strategy],
            light: true,
            label: (r.peakRssAnonBytes / MiB).toFixed(0),
            tooltip: `${r.strategy}: peak RssAnon ${(r.peakRssAnonBytes / MiB).toFixed(1)} MiB`,
          },
        ],
      })),
    }),
  );
  return figure({
    title: `Peak memory per model and strategy (Fig. 10) — ${scenarioLabel(g)}`,
    subtitle: subtitle(g, "process memory sampled every millisecond, medians of the peaks"),
    legend: [
      { label: "peak RSS (solid)", colour: "#8C8C8C" },
      { label: "peak RssAnon: private memory (light)", colour: "#8C8C8C", style: "light" },
      { label: "RSS when the request arrived", colour: "#222222", style: "line" },
    ],
    panels,
    columns: 3,
    panelWidth: 400,
    panelHeight: 330,
    notes: [
      "RssAnon is what limits how many instances fit on a machine; RSS adds the file-backed pages (mapped weights, code).",
    ],
  });
}

function workWaitFigure(g: RunGroup): string {
  const panels = g.runs.map((run) =>
    categoryPanel({
      title: modelTitle(run),
      yLabel: "time (ms), medians over cold starts",
      groups: run.summary.results.map((r) => ({
        label: r.strategy,
        items: (["workMs", "waitMs"] as const).map((k): CategoryItem => ({
          kind: "stack",
          light: k === "waitMs",
          label: UNITS.reduce((sum, u) => sum + r.units[u][k], 0).toFixed(0),
          segments: UNITS.map((u) => ({
            value: r.units[u][k],
            colour: UNIT_COLOURS[u],
            tooltip: `${r.strategy}: ${u} (${UNIT_NAMES[u]}) ${k === "workMs" ? "working" : "waiting"} ${r.units[u][k].toFixed(1)} ms`,
          })),
        })),
      })),
    }),
  );
  return figure({
    title: `Working and waiting time per unit (Fig. 12) — ${scenarioLabel(g)}`,
    subtitle: subtitle(g, "per strategy: left bar working, right bar waiting, stacked by unit"),
    legend: [
      ...UNITS.map((u) => ({ label: `${u} ${UNIT_NAMES[u]}`, colour: UNIT_COLOURS[u] })),
      { label: "working (solid)", colour: "#8C8C8C" },
      { label: "waiting (light)", colour: "#8C8C8C", style: "light" as const },
    ],
    panels,
    columns: 3,
    panelWidth: 400,
    panelHeight: 330,
    notes: [
      "Working: the sum of a unit's task durations (units overlap, so the sum can exceed the latency). Waiting: the sum over its tasks of start minus the moment its inputs were ready (L_i after L_i−1; A_i after L_i, R_i, A_i−1; E_i after A_i and E_i−1).",
    ],
  });
}

function utilizationFigure(g: RunGroup): string {
  const perRun = g.runs.map((run) =>
    run.summary.results.map((r) => {
      const traces = run.raw ? countedColdStarts(run.raw, r.strategy).map((c) => c.report.trace) : [];
      return { r, values: traces.length ? traces.map((t) => utilization(t) * 100) : [r.utilization * 100] };
    }),
  );
  const lowest = Math.min(...perRun.flat().flatMap((x) => x.values));
  const panels = g.runs.map((run, i) =>
    categoryPanel({
      title: modelTitle(run),
      yLabel: "pipeline utilisation (%)",
      yMin: Math.min(lowest, 96),
      yMax: 100,
      groups: perRun[i]!.map(({ r, values }) => ({
        label: r.strategy,
        items: [
          {
            kind: "strip",
            values,
            colour: STRATEGY_COLOURS[r.strategy],
            tooltip: `${r.strategy} utilisation %`,
          },
        ],
      })),
      refLines: [
        {
          value: TARGETS.cicadaUtilization * 100,
          label: `target (cicada):\n${TARGETS.cicadaUtilization * 100} %`,
          colour: "#B00020",
        },
        {
          value: PAPER.utilizationPct[0],
          label: `paper:\n${PAPER.utilizationPct[0]} %`,
          colour: "#0072B2",
        },
      ],
    }),
  );
  return figure({
    title: `Pipeline utilisation per cold start (Fig. 13) — ${scenarioLabel(g)}`,
    subtitle: subtitle(
      g,
      "union of all units' active intervals / pipeline time (first task start to last task end)",
    ),
    legend: [
      { label: "one counted cold start", colour: "#8C8C8C", style: "point" },
      { label: "median", colour: "#222222", style: "line" },
    ],
    panels,
    columns: 3,
    panelWidth: 400,
    panelHeight: 330,
  });
}

/** Every chart of the report: six figures per scenario × cache, and a Gantt chart per model × strategy. */
export function benchCharts(runs: readonly BenchRun[]): Chart[] {
  const charts: Chart[] = [];
  for (const g of groupRuns(runs)) {
    const at = { scenario: g.scenario, cache: g.cache };
    const add = (kind: string, fig: string, title: string, svg: string | undefined) => {
      if (svg) charts.push({ file: `${kind}-${g.scenario}-${g.cache}.svg`, figure: fig, title, svg, ...at });
    };
    add("latency", "Fig. 9", "Cold-start latency", latencyFigure(g));
    add("memory", "Fig. 10", "Peak memory", memoryFigure(g));
    add("memory-time", "Fig. 10", "Memory over time", memoryTimeFigure(g));
    add("cosine", "Fig. 11", "Cosine against eager per stage", cosineFigure(g));
    add("work-wait", "Fig. 12", "Working and waiting time per unit", workWaitFigure(g));
    add("utilization", "Fig. 13", "Pipeline utilisation", utilizationFigure(g));
    add("occupancy", "Fig. 14", "Per-unit occupancy", occupancyFigure(g));
    charts.push(...ganttCharts(g));
  }
  return charts;
}
