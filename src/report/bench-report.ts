// report.md and its charts from benchmark data: what `cicada bench --out` writes beside its JSON, and what
// `cicada report` writes for several runs at once. The report names the machine and the scenario of every
// number, puts our ratios next to the paper's and issue 3's targets, and embeds the figures. It is written
// whole or not at all: everything goes to a temporary directory first and is renamed into place.
import { existsSync } from "node:fs";
import { mkdir, mkdtemp, rename, rm, writeFile } from "node:fs/promises";
import { isAbsolute, join, relative, sep } from "node:path";
import { CicadaError } from "../errors.js";
import { UNITS } from "../metrics/trace.js";
import type { StrategyName } from "../config.js";
import { benchCharts } from "./bench-charts.js";
import { groupRuns, scenarioLabel, type Chart, type RunGroup } from "./run-groups.js";
import type { BenchRun, ReportSummary } from "./bench-data.js";
import {
  ablationTable,
  latencyRatio,
  latencyTargetTable,
  mdTable,
  otherTargetTable,
  paperTable,
  ratio,
  resultOf,
} from "./report-tables.js";

/** A fraction as a percentage without sign: `99.7 %`. */
const share = (x: number) => `${(x * 100).toFixed(1)} %`;

/** What a report is made from. */
export interface ReportInputs {
  runs: BenchRun[];
  /** How the data was produced or gathered, printed at the top (e.g. the command line). */
  command?: string;
}

const MiB = 2 ** 20;
const mib = (bytes: number) => `${(bytes / MiB).toFixed(bytes >= 100 * MiB ? 0 : 1)} MiB`;
const ms = (v: number) => (Number.isFinite(v) ? v.toFixed(1) : "–");
/** 1 − cosine in scientific notation ("2.6e-14"; "0" when equal up to rounding). */
const distance = (cos: number) => (1 - cos <= 0 ? "0" : (1 - cos).toExponential(1));
const gbps = (b: number) => (b >= 1e8 ? `${(b / 1e9).toFixed(2)} GB/s` : `${(b / 1e6).toFixed(1)} MB/s`);

function machineTable(runs: readonly BenchRun[]): string {
  const seen = new Map<string, string[]>();
  for (const { summary: s } of runs) {
    const m = s.machine;
    const row = [
      m.cpuModel,
      String(m.cores),
      m.cpuFeatures.join(" ") || "–",
      m.virtualized === undefined ? "–" : m.virtualized ? "yes" : "no",
      `${(m.totalMemoryBytes / 2 ** 30).toFixed(1)} GiB`,
      m.kernel,
      m.transparentHugePages ?? "–",
      m.glibcTunables ?? "–",
      m.ortVersion,
      m.nodeVersion,
    ];
    seen.set(row.join("\u0000"), row);
  }
  return mdTable(
    [
      "CPU",
      "cores",
      "vector extensions",
      "VM",
      "memory",
      "kernel",
      "THP",
      "GLIBC_TUNABLES",
      "onnxruntime",
      "node",
    ],
    [...seen.values()],
    ["l", "r", "l", "l", "r", "l", "l", "l", "l", "l"],
  );
}

/** The run's bench.json: relative when it lies at or under the report's directory, else absolute. */
function link(reportDir: string, run: BenchRun): string {
  if (!run.source) return "bench.json";
  const rel = relative(reportDir, run.source);
  if (rel.startsWith("..") || isAbsolute(rel)) return `${run.source}/bench.json`;
  return rel ? `${rel.split(sep).join("/")}/bench.json` : "bench.json";
}

function runsTable(g: RunGroup, reportDir: string): string {
  return mdTable(
    [
      "model",
      "stages",
      "weights",
      "rounds",
      "floor: warm run of eager",
      "disk",
      "eviction check",
      "in page cache",
      "load 1 min",
      "data",
    ],
    g.runs.map((run) => {
      const s = run.summary;
      const e = s.eviction;
      return [
        s.model,
        String(s.stages),
        mib(s.weightBytes),
        `${s.repeat} (+1 warm-up)`,
        `${ms(s.warmRunMedianMs)} ms`,
        `${gbps(s.diskBandwidthBytesPerS)} (${s.diskBandwidthMethod})`,
        e
          ? `${e.checks - e.failed}/${e.checks} evicted: ${gbps(e.coldProbeMedianBytesPerS)} vs ${gbps(e.warmProbeMedianBytesPerS)} cached`
          : "–",
        s.pageCache
          ? `${share(s.pageCache.residentFractionMin)}–${share(s.pageCache.residentFractionMax)}`
          : "–",
        s.machine.loadAverage1m.toFixed(2),
        `[bench.json](${link(reportDir, run)})${run.raw ? "" : " (no raw data)"}`,
      ];
    }),
    ["l", "r", "r", "r", "r", "l", "l", "r", "l"],
  );
}

function mediansTable(g: RunGroup): string {
  const strategies = [...new Set(g.runs.flatMap((r) => r.summary.results.map((x) => x.strategy)))];
  return mdTable(
    ["model", ...strategies.map((s) => `${s} ms`), "cicada util", "cicada peak RSS"],
    g.runs.map(({ summary: s }) => {
      const c = resultOf(s, "cicada");
      return [
        s.model,
        ...strategies.map((x) => ms(resultOf(s, x)?.latencyMedianMs ?? NaN)),
        c ? c.utilization.toFixed(3) : "–",
        c ? mib(c.peakRssBytes) : "–",
      ];
    }),
  );
}

/** `pipeline`, `whole`, or the counts of each when a strategy used both (runs before plans: pipeline). */
function planOf(plans: Partial<Record<"pipeline" | "whole", number>> | undefined): string {
  const used = Object.entries(plans ?? {}).filter(([, n]) => n > 0);
  if (used.length === 0) return "–";
  return used.length === 1 ? used[0]![0] : used.map(([p, n]) => `${p} ×${n}`).join(", ");
}

function strategyTable(s: ReportSummary): string {
  const speedup = (peer: StrategyName, x: StrategyName) => ratio(latencyRatio(s, peer, x));
  return mdTable(
    [
      "strategy",
      "plan",
      "median ms",
      "p10 ms",
      "p90 ms",
      "eager/x",
      "ort-best/x",
      "pisel/x",
      "x/floor",
      "utilisation",
      "peak RSS",
      "peak RssAnon",
      "RSS before",
      "minor faults",
      "cosine min",
    ],
    s.results.map((r) => [
      r.strategy,
      planOf(r.plans),
      ms(r.latencyMedianMs),
      ms(r.latencyP10Ms),
      ms(r.latencyP90Ms),
      speedup("eager", r.strategy),
      speedup("ort-best", r.strategy),
      speedup("pisel", r.strategy),
      ratio(r.latencyMedianMs / s.warmRunMedianMs),
      r.utilization.toFixed(3),
      mib(r.peakRssBytes),
      mib(r.peakRssAnonBytes),
      mib(r.baselineRssBytes),
      `${r.minorFaults} (${mib(r.minorFaults * 4096)})`,
      Number.isFinite(r.cosineMin) ? r.cosineMin.toFixed(6) : "–",
    ]),
  );
}

function unitTable(s: ReportSummary): string {
  return mdTable(
    ["strategy", ...UNITS.flatMap((u) => [`${u} work ms`, `${u} wait ms`])],
    s.results.map((r) => [
      r.strategy,
      ...UNITS.flatMap((u) => [ms(r.units[u].workMs), ms(r.units[u].waitMs)]),
    ]),
  );
}

function stageCosineTable(s: ReportSummary): string | undefined {
  if (!s.results.some((r) => r.stageCosineMin?.length)) return undefined;
  return mdTable(
    ["strategy", ...Array.from({ length: s.stages }, (_, i) => `stage ${i}`)],
    s.results.map((r) => [
      r.strategy,
      ...Array.from({ length: s.stages }, (_, i) => {
        const c = r.stageCosineMin?.[i];
        return c === undefined || c === null ? "–" : distance(c);
      }),
    ]),
  );
}

function modelSection(run: BenchRun, g: RunGroup, charts: Chart[]): string[] {
  const s = run.summary;
  const out = [`### ${s.model} — ${scenarioLabel(g)}`, "", strategyTable(s)];
  out.push(
    "eager/x, ort-best/x, pisel/x: speed-up (the peer's median latency / this one's; > 1 is faster than the peer). " +
      "x/floor: median latency / warm run of eager. Minor faults × 4 KiB are the bytes of new memory touched.",
    "",
    "Working and waiting time per unit (medians over counted cold starts):",
    "",
    unitTable(s),
  );
  if (s.memoryBudgetBytes)
    out.push(`Every cold start ran under a memory budget of ${mib(s.memoryBudgetBytes)}.`, "");
  for (const r of s.refused ?? []) out.push(`- ${r.strategy}: refused before allocating (${r.message})`);
  if (s.refused?.length) out.push("");
  const cos = stageCosineTable(s);
  if (cos)
    out.push("1 − cosine of each stage's outputs against eager's, worst over every cold start:", "", cos);
  const gantts = charts.filter(
    (c) => c.model === s.model && c.scenario === g.scenario && c.cache === g.cache,
  );
  if (gantts.length) {
    out.push(
      `Gantt charts (Fig. 15; the counted cold start with median latency): ${gantts.map((c) => `[${c.strategy}](charts/${c.file})`).join(" · ")}`,
      "",
    );
    const shown = gantts.filter((c) => c.strategy === "pisel" || c.strategy === "cicada");
    for (const c of shown.length ? shown : gantts.slice(0, 1))
      out.push(`![${c.title}](charts/${c.file})`, "");
  } else {
    out.push("(No raw data for this run: no Gantt charts.)", "");
  }
  return out;
}

/** report.md for `inputs`, with `charts` written under charts/ of `reportDir`. */
export function benchReportMarkdown(inputs: ReportInputs, charts: Chart[], reportDir: string): string {
  const groups = groupRuns(inputs.runs);
  const models = [...new Set(inputs.runs.map((r) => r.summary.model))];
  const out: string[] = [
    "# Cold-start evaluation",
    "",
    `Models: ${models.join(", ")}. Scenarios: ${groups.map(scenarioLabel).join("; ")}.` +
      (inputs.command ? ` Produced by \`${inputs.command}\`.` : ""),
    "",
    "Every number is a median over counted cold starts (after one warm-up round), strategies interleaved " +
      "in rotated order; the machine is shared and noisy, so compare ratios within one run rather than absolute " +
      "times across runs. How to read the tables and figures: docs/evaluation.md.",
    "",
    "## Machine",
    "",
    machineTable(inputs.runs),
    "## Our ratios next to the paper's",
    "",
    "Changes are ours relative to the peer (negative: lower, i.e. faster or smaller). The paper ran PyTorch " +
      "models on a 96-core server; we run onnxruntime-node, so the causes of each gain differ (docs/evaluation.md).",
    "",
    paperTable(inputs.runs),
    "## Targets of issue 3",
    "",
    "Latency ratios are cicada's median over the peer's (lower is better). Issue 3 sets them on resnet50, vgg16 " +
      "and opt-1.3b; other models (ref.) are held to the same numbers for reference.",
    "",
    latencyTargetTable(inputs.runs),
    otherTargetTable(inputs.runs),
    "Bytes touched: minor page faults of the cold start. Worst cosine: every strategy's outputs (and stage " +
      "outputs where measured) against eager, over every cold start.",
    "",
  ];
  for (const g of groups) {
    const mine = charts.filter((c) => c.scenario === g.scenario && c.cache === g.cache && !c.model);
    out.push(
      `## ${scenarioLabel(g)}`,
      "",
      runsTable(g, reportDir),
      "Median latency (ms) of each strategy:",
      "",
    );
    out.push(
      mediansTable(g),
      "Ablation: latency change against pisel of each component, and of cicada against each:",
      "",
    );
    out.push(ablationTable(g));
    for (const c of mine)
      out.push(
        `**${c.figure} — ${c.title}**`,
        "",
        `![${c.title}, ${scenarioLabel(g)}](charts/${c.file})`,
        "",
      );
    for (const run of g.runs) out.push(...modelSection(run, g, charts));
  }
  return out.join("\n").replace(/\n{3,}/g, "\n\n");
}

/**
 * Writes report.md and charts/*.svg into `dir` (created if missing), replacing a previous report there.
 * Both are written into a temporary directory inside `dir` and renamed into place, so a failure leaves the
 * previous report (or none), never half of one. Returns the paths written.
 */
export async function writeBenchReport(
  dir: string,
  inputs: ReportInputs,
): Promise<{ report: string; charts: string[] }> {
  if (inputs.runs.length === 0) throw new CicadaError("E_USAGE", "report: no benchmark run to report");
  const charts = benchCharts(inputs.runs);
  const markdown = benchReportMarkdown(inputs, charts, dir);
  let tmp: string;
  try {
    await mkdir(dir, { recursive: true });
    tmp = await mkdtemp(join(dir, ".report-tmp-"));
  } catch (e) {
    throw new CicadaError("E_USAGE", `cannot write a report into ${dir} (${(e as Error).message})`);
  }
  const report = join(dir, "report.md");
  const chartsDir = join(dir, "charts");
  try {
    await mkdir(join(tmp, "charts"));
    for (const c of charts) await writeFile(join(tmp, "charts", c.file), c.svg);
    await writeFile(join(tmp, "report.md"), markdown);
    // Swap the charts directory (keeping the old one until the new report is in place), then the report.
    const old = join(tmp, "charts.old");
    if (existsSync(chartsDir)) await rename(chartsDir, old);
    try {
      await rename(join(tmp, "charts"), chartsDir);
      await rename(join(tmp, "report.md"), report);
    } catch (e) {
      if (existsSync(old)) {
        await rm(chartsDir, { recursive: true, force: true });
        await rename(old, chartsDir);
      }
      throw e;
    }
  } catch (e) {
    throw e instanceof CicadaError
      ? e
      : new CicadaError("E_USAGE", `cannot write the report into ${dir} (${(e as Error).message})`);
  } finally {
    await rm(tmp, { recursive: true, force: true });
  }
  return { report, charts: charts.map((c) => join(chartsDir, c.file)) };
}
