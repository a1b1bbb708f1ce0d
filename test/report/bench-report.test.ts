// report.md and the charts: on synthetic bench data (several models and scenarios, raw data present or
// not, per-stage cosines present or not) where every ratio is known, and on one real tiny `cicada bench
// --out` run, whose report must agree with its bench.json. Also: a report is replaced whole or not at all.
import { test } from "node:test";
import assert from "node:assert/strict";
import { existsSync } from "node:fs";
import { mkdir, mkdtemp, readdir, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { BenchSummary } from "../../src/bench/cold-start-types.js";
import { isCicadaError } from "../../src/errors.js";
import type { BenchRun } from "../../src/report/bench-data.js";
import { writeBenchReport } from "../../src/report/bench-report.js";
import { PAPER } from "../../src/report/paper-figures.js";
import { STRATEGIES } from "../../src/config.js";
import { cicada } from "../support/cli.js";
import { syntheticRun } from "./synthetic-bench.js";
import { xmlProblem } from "./xml-check.js";

const root = await mkdtemp(join(tmpdir(), "cicada-report-"));
test.after(() => rm(root, { recursive: true, force: true }));

/** The runs of the synthetic tests: two models in reload/warm; one in fresh/warm as old data without raw. */
function syntheticRuns(): BenchRun[] {
  const alpha = syntheticRun({ model: "alpha", stages: 3 });
  const opt = syntheticRun({ model: "opt-1.3b", stages: 2, scale: 5 });
  const fresh = syntheticRun({ model: "alpha", scenario: "fresh", stages: 3 }).summary;
  // Data written before per-stage cosines existed.
  for (const r of fresh.results) delete (r as Partial<BenchSummary["results"][number]>).stageCosineMin;
  return [
    { ...alpha, source: join(root, "alpha") },
    { ...opt, source: join(root, "opt") },
    { summary: fresh, source: join(root, "fresh") },
  ];
}

/** The lines of the table right under a heading that starts with `heading`. */
function sectionRows(md: string, heading: string): string[] {
  const at = md.indexOf(`\n${heading}`);
  assert.ok(at >= 0, `no section ${heading}`);
  const rest = md.slice(at + heading.length + 1).split("\n");
  const start = rest.findIndex((l) => l.startsWith("|"));
  const end = rest.findIndex((l, i) => i > start && !l.startsWith("|"));
  return rest.slice(start, end);
}

/** Checks every chart is well formed, linked from the report, and every link has its file. */
async function checkCharts(dir: string, md: string): Promise<string[]> {
  const files = (await readdir(join(dir, "charts"))).sort();
  const linked = [...md.matchAll(/\]\(charts\/([^)]+)\)/g)].map((m) => m[1]!);
  assert.deepEqual([...new Set(linked)].sort(), files, "every chart is linked and every link exists");
  for (const f of files) {
    const svg = await readFile(join(dir, "charts", f), "utf8");
    assert.equal(xmlProblem(svg), undefined, f);
    assert.match(svg, /^<svg xmlns="http:\/\/www\.w3\.org\/2000\/svg"/, f);
    assert.match(svg, /fill="white"/, `${f}: white background`);
  }
  return files;
}

test("synthetic data: tables, ratios, paper and target comparison, and every chart", async () => {
  const dir = join(root, "synthetic");
  const runs = syntheticRuns();
  const written = await writeBenchReport(dir, { runs, command: "cicada report test" });
  assert.equal(written.report, join(dir, "report.md"));
  const md = await readFile(written.report, "utf8");
  const files = await checkCharts(dir, md);

  const figures = ["latency", "memory", "cosine", "work-wait", "utilization"];
  for (const f of [...figures, "memory-time", "occupancy"])
    assert.ok(files.includes(`${f}-reload-warm.svg`), f);
  // Without raw data: no time series, occupancy or Gantt charts, but the summary figures.
  for (const f of figures) assert.ok(files.includes(`${f}-fresh-warm.svg`), f);
  assert.ok(!files.includes("memory-time-fresh-warm.svg") && !files.includes("occupancy-fresh-warm.svg"));
  for (const model of ["alpha", "opt-1.3b"]) {
    for (const s of STRATEGIES)
      assert.ok(files.includes(`gantt-${model}-reload-warm-${s}.svg`), `${model} ${s}`);
  }
  assert.ok(!files.some((f) => f.startsWith("gantt-alpha-fresh")));
  assert.match(md, /\(No raw data for this run: no Gantt charts\.\)/);

  // Every strategy named in the report and in every figure that compares strategies.
  for (const s of STRATEGIES) assert.ok(md.includes(`| ${s} |`), s);
  const latencySvg = await readFile(join(dir, "charts", "latency-reload-warm.svg"), "utf8");
  for (const s of STRATEGIES) assert.ok(latencySvg.includes(`>${s}</text>`), `latency chart names ${s}`);
  assert.match(latencySvg, /Scenario reload, cache warm/);

  // Per-model tables agree with the summaries.
  for (const { summary: s } of runs) {
    const rows = sectionRows(md, `### ${s.model} — ${s.scenario}, cache ${s.cache}`);
    for (const r of s.results) {
      const row = rows.find((l) => l.startsWith(`| ${r.strategy} |`));
      assert.ok(row, `${s.model} ${r.strategy}`);
      const cells = row.split("|").map((c) => c.trim());
      assert.equal(cells[2], r.strategy === "eager" || r.strategy === "ort-best" ? "whole" : "pipeline");
      assert.equal(cells[3], r.latencyMedianMs.toFixed(1));
      assert.equal(cells[4], r.latencyP10Ms.toFixed(1));
      assert.equal(cells[5], r.latencyP90Ms.toFixed(1));
      assert.equal(cells[10], r.utilization.toFixed(3));
    }
  }

  // Known ratios: cicada 100, eager 200, ort-best 120, pisel 180, mini 130, preload 150 (× scale); floor 40.
  assert.match(
    md,
    /\| reload, cache warm \| alpha \(ref\.\) \| 0\.50 ≤ 0\.6 ✓ \| 0\.83 ≤ 1\.0 ✓ \| 0\.56 ≤ 0\.65 ✓ \| 2\.50 ≤ 1\.6 ✗; floor 40\.0 ms \|/,
  );
  assert.match(md, /\| reload, cache warm \| opt-1\.3b \| 0\.50 ≤ 0\.6 ✓/);
  assert.match(
    md,
    /\| fresh, cache warm \| alpha \(ref\.\) \| 0\.50 ≤ 0\.33 ✗ \| 0\.83 ≤ 0\.75 ✗ \| 0\.56 ≤ 0\.65 ✓ \| 2\.50 \(report\); floor 40\.0 ms \|/,
  );
  const ablation = sectionRows(md, "Ablation: latency change").find((l) => l.startsWith("| alpha |"))!;
  assert.deepEqual(
    ablation
      .split("|")
      .slice(2, 7)
      .map((c) => c.trim()),
    ["-27.8 %", "-16.7 %", "-44.4 %", "-23.1 %", "-33.3 %"],
  );
  // The paper's figures with the paper's digits, next to ours.
  const paper = sectionRows(md, "## Our ratios next to the paper's");
  const latencyRow = paper.find((l) => l.startsWith("| latency of cicada vs pisel |"))!;
  assert.ok(latencyRow.includes(`${PAPER.latencyVsPiselPct} % (average)`));
  assert.ok(latencyRow.includes("mean -44.4 % (-44.4 % … -44.4 %)"), latencyRow);
  assert.ok(paper.some((l) => l.includes("99.41–100 %")));
  assert.ok(paper.some((l) => l.includes("-45.77 % to -81.82 %")));
  assert.ok(paper.find((l) => l.startsWith("| MiniLoader"))!.includes("up to -47.34 %"));
  assert.ok(paper.find((l) => l.startsWith("| WeightDecoupler"))!.includes("up to -23.87 %"));
  // Links to the data.
  assert.ok(md.includes(`[bench.json](${join(root, "alpha")}/bench.json)`));

  // Per-stage cosines where the data has them; the final output's where it does not.
  const staged = await readFile(join(dir, "charts", "cosine-reload-warm.svg"), "utf8");
  for (const st of ["stage 0", "stage 1", "stage 2"]) assert.ok(staged.includes(`>${st}</text>`), st);
  const old = await readFile(join(dir, "charts", "cosine-fresh-warm.svg"), "utf8");
  assert.ok(old.includes(">graph outputs</text>") && !old.includes(">stage 0</text>"));
  assert.match(md, /1 − cosine of each stage's outputs against eager's/);

  // The Gantt chart is the counted cold start with the median latency (100 ms for alpha's cicada).
  const gantt = await readFile(join(dir, "charts", "gantt-alpha-reload-warm-cicada.svg"), "utf8");
  assert.match(gantt, /median latency \(100\.0 ms end to end, round \d\)/);
});

test("a report replaces the previous one whole, and a failed write leaves the previous one", async () => {
  const dir = join(root, "replace");
  const runs = syntheticRuns();
  await writeBenchReport(dir, { runs });
  const before = (await readdir(join(dir, "charts"))).sort();
  // A smaller report: charts of the first report that it does not have are gone.
  await writeBenchReport(dir, { runs: runs.slice(2) });
  const after = (await readdir(join(dir, "charts"))).sort();
  assert.ok(after.length < before.length && after.every((f) => f.includes("fresh")));
  assert.ok((await readFile(join(dir, "report.md"), "utf8")).includes("## fresh, cache warm"));

  // Make the last step (report.md into place) fail: the previous charts must come back.
  await rm(join(dir, "report.md"));
  await mkdir(join(dir, "report.md"));
  await writeFile(join(dir, "report.md", "in-the-way"), "");
  await assert.rejects(
    writeBenchReport(dir, { runs }),
    (e) => isCicadaError(e, "E_USAGE") && /report/.test(e.message),
  );
  assert.deepEqual((await readdir(join(dir, "charts"))).sort(), after);
  assert.deepEqual(
    (await readdir(dir)).filter((f) => f.startsWith(".")),
    [],
    "no temporary directory left",
  );
  await assert.rejects(writeBenchReport(join(root, "none"), { runs: [] }), (e) =>
    isCicadaError(e, "E_USAGE"),
  );
  assert.ok(!existsSync(join(root, "none")));
});

test("cicada bench --out writes report.md and charts that agree with its bench.json; cicada report rewrites them", async () => {
  const out = join(root, "bench-out");
  const env = { CICADA_CACHE: join(root, "cache") };
  const strategies = ["eager", "pisel", "cicada"];
  let r = await cicada(
    ["bench", "--model", "tiny-resnet", "--repeat", "1", "--strategies", strategies.join(","), "--out", out],
    env,
  );
  assert.equal(r.code, 0, r.stderr);
  const summary = JSON.parse(await readFile(join(out, "bench.json"), "utf8")) as BenchSummary;
  const md = await readFile(join(out, "report.md"), "utf8");
  const files = await checkCharts(out, md);
  for (const s of strategies) {
    assert.ok(files.includes(`gantt-tiny-resnet-reload-warm-${s}.svg`), s);
    const svg = await readFile(join(out, "charts", "latency-reload-warm.svg"), "utf8");
    assert.ok(svg.includes(`>${s}</text>`), `latency chart names ${s}`);
  }
  assert.ok(md.includes("cicada bench --model tiny-resnet"));
  const rows = sectionRows(md, "### tiny-resnet — reload, cache warm");
  for (const x of summary.results) {
    const cells = rows
      .find((l) => l.startsWith(`| ${x.strategy} |`))!
      .split("|")
      .map((c) => c.trim());
    assert.ok(["pipeline", "whole"].includes(cells[2]!), `plan of ${x.strategy}: ${cells[2]}`);
    assert.deepEqual(
      cells.slice(3, 6),
      [x.latencyMedianMs, x.latencyP10Ms, x.latencyP90Ms].map((v) => v.toFixed(1)),
    );
    assert.equal(cells[10], x.utilization.toFixed(3));
  }
  const medians = sectionRows(md, "Median latency (ms) of each strategy:");
  assert.equal(
    medians[0],
    `| model | ${strategies.map((s) => `${s} ms`).join(" | ")} | cicada util | cicada peak RSS |`,
  );
  assert.equal(
    medians[2],
    `| tiny-resnet | ${summary.results.map((x) => x.latencyMedianMs.toFixed(1)).join(" | ")} | ${summary.results[2]!.utilization.toFixed(3)} | ${(summary.results[2]!.peakRssBytes / 2 ** 20).toFixed(0)} MiB |`,
  );

  // The same directory through `cicada report`, in place: the same charts, written again.
  r = await cicada(["report", out], env);
  assert.equal(r.code, 0, r.stderr);
  assert.match(r.stderr, /1 run/);
  assert.deepEqual((await readdir(join(out, "charts"))).sort(), files);
  assert.ok((await readFile(join(out, "report.md"), "utf8")).includes(`cicada report ${out}`));
});
