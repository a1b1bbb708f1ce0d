// The figures drawn from the raw data of every cold start (raw/<model>.json): memory over time (Fig. 10),
// the cosine of every stage output (Fig. 11), per-unit occupancy (Fig. 14) and the Gantt charts (Fig. 15).
// A run without raw data has none of them, except the cosine figure, which falls back to the summary.
import { ganttSvg } from "./gantt.js";
import { UNITS, unionLength, type Trace, type Unit } from "../metrics/trace.js";
import type { StrategyName } from "../config.js";
import { countedColdStarts, medianColdStart, type BenchRun, type ReportRaw } from "./bench-data.js";
import { TARGETS } from "./paper-figures.js";
import {
  allStrategies,
  MiB,
  modelTitle,
  scenarioLabel,
  slug,
  STRATEGY_COLOURS,
  strategiesOf,
  strategyLegend,
  subtitle,
  UNIT_COLOURS,
  UNIT_NAMES,
  type Chart,
  type RunGroup,
} from "./run-groups.js";
import type { Panel } from "./svg-chart.js";
import { figure } from "./svg-figure.js";
import { categoryPanel, linePanel, type CategoryItem } from "./svg-panels.js";

/** At most `max` points: each bucket keeps its largest value, so the peak survives. */
function thin(points: [number, number][], max = 400): [number, number][] {
  if (points.length <= max) return points;
  const out: [number, number][] = [];
  const size = points.length / max;
  for (let b = 0; b < max; b++) {
    const bucket = points.slice(Math.floor(b * size), Math.floor((b + 1) * size));
    out.push(bucket.reduce((best, p) => (p[1] > best[1] ? p : best), bucket[0]!));
  }
  return out;
}

/** Fig. 10 (time series): RSS and RssAnon of each strategy's median cold start; undefined without raw data. */
export function memoryTimeFigure(g: RunGroup): string | undefined {
  const withRaw = g.runs.filter((r): r is BenchRun & { raw: ReportRaw } => r.raw !== undefined);
  if (!withRaw.length) return undefined;
  const panels: Panel[] = withRaw.flatMap((run) =>
    ([1, 2] as const).map((field) =>
      linePanel({
        title: `${run.summary.model}: ${field === 1 ? "RSS" : "RssAnon (private)"}`,
        xLabel: "ms since the request arrived",
        yLabel: `${field === 1 ? "RSS" : "RssAnon"} (MiB)`,
        series: strategiesOf(run).flatMap((s) => {
          const c = medianColdStart(run.raw, s);
          if (!c) return [];
          // The first sample is taken as the request arrives (just before the clock starts).
          const t0 = c.report.memory.samples[0]?.[0] ?? c.report.trace.requestStart;
          const pts = c.report.memory.samples.map((p): [number, number] => [
            Math.max(0, p[0] - t0),
            p[field] / MiB,
          ]);
          return [
            {
              label: `${s}: ${c.report.latencyMs.toFixed(1)} ms`,
              colour: STRATEGY_COLOURS[s],
              points: thin(pts),
            },
          ];
        }),
      }),
    ),
  );
  return figure({
    title: `Memory over time of one cold start per strategy (Fig. 10) — ${scenarioLabel(g)}`,
    subtitle: subtitle(
      g,
      "the counted cold start with the median latency of each strategy; a line ends when its response is complete",
    ),
    legend: strategyLegend(allStrategies(g), "line"),
    panels,
    columns: 2,
    panelWidth: 520,
    panelHeight: 320,
  });
}

/** 1 − cosine as drawn: values at or below this (equal up to rounding) sit on the bottom of the axis. */
const EXACT = 1e-16;
const distance = (cos: number) => Math.max(EXACT, 1 - cos);

/** Per stage (or "output"), per strategy: the 1 − cosine values of every cold start. */
function cosineGroups(run: BenchRun): { label: string; values: Map<StrategyName, number[]> }[] {
  const s = run.summary;
  const staged = run.raw?.coldStarts.some((c) => c.report.stageCosines?.length);
  if (run.raw && staged) {
    return Array.from({ length: s.stages }, (_, stage) => ({
      label: `stage ${stage}`,
      values: new Map(
        strategiesOf(run).map((st) => [
          st,
          run
            .raw!.coldStarts.filter((c) => c.report.strategy === st)
            .flatMap((c) =>
              (c.report.stageCosines ?? []).filter((x) => x.stage === stage).map((x) => distance(x.cosine)),
            ),
        ]),
      ),
    }));
  }
  if (run.raw) {
    const raw = run.raw;
    return [
      {
        label: "graph outputs",
        values: new Map(
          strategiesOf(run).map((st) => [
            st,
            raw.coldStarts
              .filter((c) => c.report.strategy === st)
              .flatMap((c) => c.report.outputs.map((o) => distance(o.cosine))),
          ]),
        ),
      },
    ];
  }
  if (s.results.some((r) => r.stageCosineMin?.length)) {
    return Array.from({ length: s.stages }, (_, stage) => ({
      label: `stage ${stage}`,
      values: new Map(
        s.results.map((r) => {
          const c = r.stageCosineMin?.[stage];
          return [r.strategy, c === undefined || c === null ? [] : [distance(c)]];
        }),
      ),
    }));
  }
  return [
    { label: "graph outputs", values: new Map(s.results.map((r) => [r.strategy, [distance(r.cosineMin)]])) },
  ];
}

/** Fig. 11: 1 − cosine per stage output and strategy, log scale, with the target. */
export function cosineFigure(g: RunGroup): string {
  const strategies = allStrategies(g);
  let widest = 0;
  const panels = g.runs.map((run) => {
    const groups = cosineGroups(run);
    widest = Math.max(widest, groups.length * strategiesOf(run).length);
    const all = groups.flatMap((gr) => [...gr.values.values()].flat());
    return categoryPanel({
      title: `${run.summary.model}: 1 − cosine against eager, per stage output`,
      yLabel: "1 − cosine (log scale)",
      log: true,
      yMin: EXACT,
      yMax: Math.max(1e-3, ...all.map((v) => v * 10)),
      groups: groups.map((gr) => ({
        label: gr.label,
        // Only the strategies that have this stage: whole-model ones have the last stage only.
        items: strategiesOf(run)
          .filter((st) => gr.values.get(st)?.length)
          .map((st): CategoryItem => ({
            kind: "strip",
            values: gr.values.get(st)!,
            colour: STRATEGY_COLOURS[st],
            tooltip: `${st}, ${gr.label}, 1 − cos`,
          })),
      })),
      refLines: [{ value: 1 - TARGETS.cosine, label: `target:\ncos ≥ ${TARGETS.cosine}`, colour: "#B00020" }],
    });
  });
  return figure({
    title: `Correctness: cosine similarity of every stage output against eager (Fig. 11) — ${scenarioLabel(g)}`,
    subtitle: subtitle(g, "every cold start, warm-up included; lower is closer to eager"),
    legend: [...strategyLegend(strategies, "point"), { label: "median", colour: "#222222", style: "line" }],
    panels,
    columns: widest > 12 ? 1 : 2,
    panelWidth: Math.min(1400, Math.max(520, 120 + widest * 22)),
    panelHeight: 330,
    notes: [
      `Points at 10⁻¹⁶ are equal to eager's up to rounding. Whole-model strategies (eager, ort-best) have only the graph outputs, the last stage's.`,
    ],
  });
}

/** Median over counted cold starts of the share of the pipeline time each unit is busy. */
function occupancy(traces: Trace[], u: Unit): number {
  const shares = traces.map((t) => {
    if (!t.events.length) return 0;
    const span = Math.max(...t.events.map((e) => e.end)) - Math.min(...t.events.map((e) => e.start));
    return span > 0 ? (unionLength(t.events.filter((e) => e.unit === u)) / span) * 100 : 0;
  });
  const s = shares.sort((a, b) => a - b);
  return s.length % 2 ? s[(s.length - 1) / 2]! : (s[s.length / 2 - 1]! + s[s.length / 2]!) / 2;
}

/** Fig. 14: per unit, the share of the pipeline time it was busy; undefined without raw data. */
export function occupancyFigure(g: RunGroup): string | undefined {
  const withRaw = g.runs.filter((r): r is BenchRun & { raw: ReportRaw } => r.raw !== undefined);
  if (!withRaw.length) return undefined;
  const panels = withRaw.map((run) =>
    categoryPanel({
      title: modelTitle(run),
      yLabel: "busy share of the pipeline time (%)",
      yMax: 100,
      groups: strategiesOf(run).map((s) => {
        const traces = countedColdStarts(run.raw, s).map((c) => c.report.trace);
        return {
          label: s,
          items: UNITS.map((u): CategoryItem => {
            const v = traces.length ? occupancy(traces, u) : NaN;
            return {
              kind: "bar",
              value: v,
              colour: UNIT_COLOURS[u],
              tooltip: `${s}: ${u} busy ${v.toFixed(1)} % of the pipeline time`,
            };
          }),
        };
      }),
    }),
  );
  return figure({
    title: `Per-unit occupancy of the pipeline (Fig. 14) — ${scenarioLabel(g)}`,
    subtitle: subtitle(
      g,
      "per unit: union of its active intervals / pipeline time, median over counted cold starts",
    ),
    legend: UNITS.map((u) => ({ label: `${u} ${UNIT_NAMES[u]}`, colour: UNIT_COLOURS[u] })),
    panels,
    columns: 3,
    panelWidth: 400,
    panelHeight: 330,
  });
}

/** A Gantt chart per model × strategy of the group: the counted cold start with the median latency. */
export function ganttCharts(g: RunGroup): Chart[] {
  const charts: Chart[] = [];
  const at = { scenario: g.scenario, cache: g.cache };
  for (const run of g.runs) {
    if (!run.raw) continue;
    for (const s of strategiesOf(run)) {
      const c = medianColdStart(run.raw, s);
      if (!c) continue;
      const title = `${run.summary.model} · ${s} · ${scenarioLabel(g)} · counted cold start with the median latency (${c.report.latencyMs.toFixed(1)} ms end to end, round ${c.round})`;
      charts.push({
        file: `gantt-${slug(run.summary.model)}-${g.scenario}-${g.cache}-${s}.svg`,
        figure: "Fig. 15",
        title: `Gantt chart: ${run.summary.model}, ${s}`,
        svg: ganttSvg(c.report.trace, title),
        ...at,
        model: run.summary.model,
        strategy: s,
      });
    }
  }
  return charts;
}
