// What `cicada replay --out DIR` writes: replay.json (the configuration, the machine, every run's summary,
// counters and instance lifecycles), raw/<policy>-<strategy>.json (every request and the memory timeline),
// report.md (the table per policy × strategy: p50/p95/p99, cold starts, rejections, host memory) and the SVG
// figures, drawn with the project's chart kit. The directory appears whole or not at all.
import { mkdir, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { writeOutputDir } from "../format/atomic-output.js";
import type { ReplayResult, ReplayRun } from "../serve/platform/replay-experiment.js";
import { mdTable } from "./report-tables.js";
import { STRATEGY_COLOURS } from "./run-groups.js";
import { PALETTE } from "./svg-chart.js";
import { figure } from "./svg-figure.js";
import { categoryPanel, linePanel } from "./svg-panels.js";

const MiB = 2 ** 20;
const mib = (b: number) => (Number.isFinite(b) ? (b / MiB).toFixed(0) : "–");
const ms = (v: number) => (Number.isFinite(v) ? (v >= 100 ? v.toFixed(0) : v.toFixed(1)) : "–");
/** A latency for a bar label: seconds from 10 s up. */
const short = (v: number) => (v >= 10_000 ? `${(v / 1000).toFixed(1)} s` : `${ms(v)} ms`);
const pct = (v: number) => (Number.isFinite(v) ? `${(100 * v).toFixed(1)} %` : "–");

/** "keep-alive × cicada". */
export function runLabel(r: { policy: string; strategy: string }): string {
  return `${r.policy} × ${r.strategy}`;
}

/** The summary of a replay without its raw data (what replay.json and --json hold). */
export function replaySummaryJson(result: ReplayResult, command?: string) {
  return {
    ...(command !== undefined ? { command } : {}),
    config: result.config,
    machine: result.machine,
    runs: result.runs.map(({ records: _r, timeline: _t, ...run }) => run),
  };
}

/** The report's tables: latency and cold starts, then memory and the platform's actions; a row per run. */
export function replayTable(result: ReplayResult): string {
  const baseline = result.runs.find((r) => r.policy === "stateless" && r.strategy === "eager");
  const pair = (a: number, b: number) => `${ms(a)} / ${ms(b)}`;
  const latency = result.runs.map((r) => {
    const s = r.summary;
    const vsBase =
      baseline && r !== baseline ? `${(s.latencyMs.p99 / baseline.summary.latencyMs.p99).toFixed(2)}x` : "–";
    return [
      runLabel(r),
      `${s.ok}/${s.sent}`,
      String(s.rejected),
      String(s.timedOut + s.failed),
      ms(s.latencyMs.p50),
      ms(s.latencyMs.p95),
      ms(s.latencyMs.p99),
      vsBase,
      pair(s.queueMs.p50, s.queueMs.p99),
      pair(s.serviceMs.p50, s.serviceMs.p99),
      pair(s.instanceMs.p50, s.instanceMs.p99),
      `${s.coldStarts} (${pct(s.coldShare)})`,
      ms(s.coldLoadMsMedian),
    ];
  });
  const memory = result.runs.map((r) => {
    const m = r.summary.memory;
    return [
      runLabel(r),
      `${mib(m.hostPeakBytes)} / ${mib(m.hostMeanBytes)}`,
      `${mib(m.rssSumPeakBytes)} / ${mib(m.rssSumMeanBytes)}`,
      `${mib(m.anonSumPeakBytes)} / ${mib(m.anonSumMeanBytes)}`,
      String(r.stats.preloads),
      String(r.stats.unloads),
      String(r.stats.evictions),
      String(r.stats.instanceDeaths),
      r.loadAverage1m.toFixed(2),
    ];
  });
  return [
    mdTable(
      [
        "policy × strategy",
        "ok/sent",
        "429",
        "504/other",
        "p50 ms",
        "p95 ms",
        "p99 ms",
        "p99 vs stateless × eager",
        "wait for an instance p50 / p99",
        "service p50 / p99",
        "at the instance p50 / p99",
        "cold starts (share)",
        "cold load median ms",
      ],
      latency,
    ),
    mdTable(
      [
        "policy × strategy",
        "host PSS peak / mean MiB",
        "Σ RSS peak / mean MiB",
        "Σ RssAnon peak / mean MiB",
        "pre-loads",
        "unloads",
        "evictions",
        "instance deaths",
        "load average",
      ],
      memory,
    ),
  ].join("\n");
}

/** At most `max` points of a series (one per bucket of neighbours, its highest), so the peaks stay. */
function peaksOf(points: [number, number][], max = 600): [number, number][] {
  if (points.length <= max) return points;
  const size = Math.ceil(points.length / max);
  const out: [number, number][] = [];
  for (let b = 0; b < points.length; b += size)
    out.push(points.slice(b, b + size).reduce((best, p) => (p[1] > best[1] ? p : best)));
  return out;
}

/**
 * One colour per run, distinct within a report: stateless runs in their strategy's colour (eager grey, as
 * the baseline everywhere), the others from the palette's remaining colours in order.
 */
function runColours(runs: readonly ReplayRun[]): string[] {
  const taken = new Set(
    runs.filter((r) => r.policy === "stateless").map((r) => STRATEGY_COLOURS[r.strategy]),
  );
  const free = PALETTE.filter((c) => !taken.has(c));
  let next = 0;
  return runs.map((r) =>
    r.policy === "stateless" ? STRATEGY_COLOURS[r.strategy] : (free[next++ % free.length] ?? "#000000"),
  );
}
const REFUSED_COLOURS = { rejected: "#E69F00", timedOut: "#000000" };

/** The figures: latency percentiles, cold starts and rejections, memory over time, the trace's arrivals. */
export function replayCharts(result: ReplayResult): { file: string; title: string; svg: string }[] {
  const runs = result.runs;
  const c = result.config;
  const colours = runColours(runs);
  const colourOf = (_r: ReplayRun, i: number) => colours[i]!;
  const subtitle = `${c.trace.source}, ${c.trace.invocations} invocations in ${c.trace.minutes} min, at ${c.timeScale}x; ${c.instances} instance(s); ${c.models.map((m) => m.name).join(", ")}`;
  const machine = `${result.machine.cpuModel}, ${result.machine.cores} cores, onnxruntime ${result.machine.ortVersion}; 1-minute load average at the start of each run: ${runs.map((r) => r.loadAverage1m.toFixed(1)).join(", ")}.`;
  const percentiles = ["p50", "p95", "p99"] as const;
  const latency = figure({
    title: "Request latency per policy × strategy (client side, ms; log scale)",
    subtitle,
    legend: percentiles.map((p, i) => ({ label: p, colour: PALETTE[i]! })),
    notes: [
      "Sent → response read, over successful requests; it includes the wait for an instance at the gateway.",
      machine,
    ],
    columns: 1,
    panelWidth: Math.max(640, 120 * runs.length),
    panels: [
      categoryPanel({
        yLabel: "latency (ms)",
        log: true,
        groups: runs.map((r) => ({
          label: runLabel(r),
          items: percentiles.map((p, i) => ({
            kind: "bar" as const,
            value: r.summary.latencyMs[p],
            colour: PALETTE[i]!,
            label: short(r.summary.latencyMs[p]),
            tooltip: `${runLabel(r)} ${p}: ${ms(r.summary.latencyMs[p])} ms`,
          })),
        })),
      }),
    ],
  });
  const cold = figure({
    title: "Cold starts and refused requests per policy × strategy",
    subtitle,
    legend: [
      { label: "429: queue full", colour: REFUSED_COLOURS.rejected },
      { label: "504: past the deadline, or failed", colour: REFUSED_COLOURS.timedOut },
    ],
    notes: [machine],
    columns: 2,
    panels: [
      categoryPanel({
        title: "cold starts (share of successful requests, %)",
        yLabel: "%",
        groups: runs.map((r, i) => ({
          label: runLabel(r),
          items: [
            {
              kind: "bar" as const,
              value: 100 * r.summary.coldShare,
              colour: colourOf(r, i),
              label: String(r.summary.coldStarts),
            },
          ],
        })),
      }),
      categoryPanel({
        title: "refused requests",
        yLabel: "requests",
        groups: runs.map((r) => ({
          label: runLabel(r),
          items: [
            {
              kind: "bar" as const,
              value: r.summary.rejected,
              colour: REFUSED_COLOURS.rejected,
              label: String(r.summary.rejected),
            },
            {
              kind: "bar" as const,
              value: r.summary.timedOut + r.summary.failed,
              colour: REFUSED_COLOURS.timedOut,
              label: String(r.summary.timedOut + r.summary.failed),
            },
          ],
        })),
      }),
    ],
  });
  const series = (field: "hostBytes" | "rssSumBytes") =>
    runs.map((r, i) => ({
      label: runLabel(r),
      colour: colourOf(r, i),
      points: peaksOf(r.timeline.map((p): [number, number] => [p.t / 1000, p[field] / MiB])),
    }));
  const memory = figure({
    title: "Host memory over the replay",
    subtitle,
    legend: runs.map((r, i) => ({ label: runLabel(r), colour: colourOf(r, i), style: "line" as const })),
    columns: 2,
    panels: [
      linePanel({
        title: "host memory: Σ PSS (+ pinned tmpfs)",
        xLabel: "s since the replay started",
        yLabel: "MiB",
        series: series("hostBytes"),
      }),
      linePanel({
        title: "Σ RSS (shared pages once per instance)",
        xLabel: "s since the replay started",
        yLabel: "MiB",
        series: series("rssSumBytes"),
      }),
    ],
    notes: [
      "Sampled every ~100 ms from /proc/<pid>/smaps_rollup and /proc/<pid>/status of every instance process.",
      machine,
    ],
  });
  const trace = figure({
    title: "The trace: invocations per minute",
    subtitle,
    columns: 1,
    panelWidth: 760,
    panelHeight: 260,
    panels: [
      linePanel({
        xLabel: "minute of the trace",
        yLabel: "invocations",
        series: [
          {
            label: "invocations",
            colour: PALETTE[0]!,
            points: c.trace.perMinute.map((n, m): [number, number] => [m, n]),
          },
        ],
      }),
    ],
  });
  return [
    { file: "latency.svg", title: "Request latency", svg: latency },
    { file: "cold-starts.svg", title: "Cold starts and refusals", svg: cold },
    { file: "memory.svg", title: "Host memory over time", svg: memory },
    { file: "trace.svg", title: "The trace", svg: trace },
  ];
}

/** report.md. */
export function replayMarkdown(result: ReplayResult, command?: string, note?: string): string {
  const c = result.config;
  const m = result.machine;
  const loads = result.runs.map((r) => r.loadAverage1m.toFixed(2)).join(", ");
  return [
    `# Trace replay: ${result.runs.map(runLabel).join(", ")}`,
    "",
    ...(command ? ["```sh", command, "```", ""] : []),
    ...(note ? [note, ""] : []),
    `Trace: ${c.trace.source}, ${c.trace.invocations} invocations of ${c.trace.functions} functions over ${c.trace.minutes} minutes (${c.trace.quietMinutes} without any), replayed ${c.timeScale}x faster (open loop), functions assigned to models at random with seed ${c.seed}. Models: ${c.models.map((x) => x.name).join(", ")}. ${c.instances} instance(s); keep-alive TTL ${c.ttlS} s of trace time; gateway queue ${c.maxQueue}, deadline ${c.timeoutMs} ms; host memory limit ${c.hostMemoryBytes ? `${mib(c.hostMemoryBytes)} MiB` : "none"}, instance limit ${c.instanceMemoryBytes ? `${mib(c.instanceMemoryBytes)} MiB` : "none"}.`,
    "",
    `Machine: ${m.cpuModel}, ${m.cores} cores, ${(m.totalMemoryBytes / 2 ** 30).toFixed(1)} GiB, onnxruntime ${m.ortVersion}, Node.js ${m.nodeVersion}; 1-minute load average at the start of each run: ${loads}.`,
    "",
    replayTable(result),
    "Latency is the client's (sent → response read), over successful requests: the wait for an instance at the gateway, then the service (everything once it had one: the instance's own time, the hops through the gateway, and the client and gateway waiting for a core, which they share with the instances). Host memory is Σ PSS of the instances (shared pages divided among the processes that map them) plus weights pinned on tmpfs (shared-weights); Σ RSS counts shared pages once per instance.",
    "",
    ...replayCharts(result).map((chart) => `![${chart.title}](${chart.file})\n`),
  ].join("\n");
}

/** Times in the raw files to the microsecond (their clock's resolution is finer than what they can say). */
const microseconds = (_key: string, v: unknown) =>
  typeof v === "number" && !Number.isInteger(v) ? Math.round(v * 1000) / 1000 : v;

/** Writes the report directory `out` (refused if it exists). */
export async function writeReplayReport(
  result: ReplayResult,
  out: string,
  command?: string,
  note?: string,
): Promise<void> {
  await writeOutputDir(out, async (dir) => {
    await writeFile(
      join(dir, "replay.json"),
      JSON.stringify(replaySummaryJson(result, command), null, 1) + "\n",
    );
    await mkdir(join(dir, "raw"));
    for (const r of result.runs) {
      const raw = { policy: r.policy, strategy: r.strategy, records: r.records, timeline: r.timeline };
      await writeFile(
        join(dir, "raw", `${r.policy}-${r.strategy}.json`),
        JSON.stringify(raw, microseconds) + "\n",
      );
    }
    for (const chart of replayCharts(result)) await writeFile(join(dir, chart.file), chart.svg);
    await writeFile(join(dir, "report.md"), replayMarkdown(result, command, note));
  });
}
