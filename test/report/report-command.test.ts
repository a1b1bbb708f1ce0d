// `cicada report` through the real command: several bench directories (and a tree of them) into one
// report, and the errors a user meets, each naming what is wrong, with nothing written.
import { test } from "node:test";
import assert from "node:assert/strict";
import { existsSync } from "node:fs";
import { mkdir, mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { cicada } from "../support/cli.js";
import { syntheticRun } from "./synthetic-bench.js";

const root = await mkdtemp(join(tmpdir(), "cicada-report-cli-"));
test.after(() => rm(root, { recursive: true, force: true }));

/** Writes a bench --out directory as cicada bench does (bench.json and raw/<model>.json). */
async function benchDir(dir: string, ...runs: ReturnType<typeof syntheticRun>[]): Promise<string> {
  await mkdir(join(dir, "raw"), { recursive: true });
  const summaries = runs.map((r) => r.summary);
  await writeFile(join(dir, "bench.json"), JSON.stringify(summaries.length === 1 ? summaries[0] : summaries));
  for (const r of runs) await writeFile(join(dir, "raw", `${r.summary.model}.json`), JSON.stringify(r.raw));
  return dir;
}

/** Expects exit code 2 with `E_USAGE` and every pattern in stderr, and no report written at `out`. */
async function refused(args: string[], patterns: RegExp[], out?: string): Promise<void> {
  const r = await cicada(["report", ...args]);
  assert.equal(r.code, 2, `${r.stdout}\n${r.stderr}`);
  assert.match(r.stderr, /cicada: E_USAGE: /);
  for (const p of patterns) assert.match(r.stderr, p);
  if (out) assert.ok(!existsSync(join(out, "report.md")), "nothing written");
}

test("a tree and a single directory combine into one report covering every model × scenario", async () => {
  const tree = join(root, "results");
  await benchDir(join(tree, "alpha-reload-warm"), syntheticRun({ model: "alpha" }));
  await benchDir(join(tree, "alpha-fresh-warm"), syntheticRun({ model: "alpha", scenario: "fresh" }));
  const cold = await benchDir(
    join(root, "cold"),
    syntheticRun({ model: "alpha", cache: "cold" }),
    syntheticRun({ model: "beta", cache: "cold", stages: 2 }),
  );
  const out = join(root, "combined", "report");
  const r = await cicada(["report", tree, cold, "--out", out]);
  assert.equal(r.code, 0, r.stderr);
  assert.match(r.stderr, /4 runs/);
  const md = await readFile(join(out, "report.md"), "utf8");
  for (const h of ["## reload, cache warm", "## fresh, cache warm", "## reload, cache cold"])
    assert.ok(md.includes(h), h);
  for (const h of ["### alpha — reload, cache cold", "### beta — reload, cache cold"])
    assert.ok(md.includes(h), h);
  // Sections in the order, whatever the order of the directories.
  assert.ok(md.indexOf("## reload, cache warm") < md.indexOf("## fresh, cache warm"));
  assert.ok(md.indexOf("## fresh, cache warm") < md.indexOf("## reload, cache cold"));
  assert.ok(existsSync(join(out, "charts", "latency-reload-cold.svg")));
  assert.ok(existsSync(join(out, "charts", "gantt-beta-reload-cold-cicada.svg")));
  // Data under the report directory is linked relatively.
  const inTree = await cicada(["report", tree]);
  assert.equal(inTree.code, 0, inTree.stderr);
  assert.ok((await readFile(join(tree, "report.md"), "utf8")).includes("](alpha-fresh-warm/bench.json)"));
});

test("input errors name the directory, the file and the field", async () => {
  const empty = join(root, "empty");
  await mkdir(join(empty, "sub"), { recursive: true });
  await refused([empty], [/no bench\.json in it or in its subdirectories/, new RegExp(empty)], empty);
  await refused([join(root, "nowhere")], [/nowhere does not exist/]);

  const notJson = join(root, "not-json");
  await mkdir(notJson);
  await writeFile(join(notJson, "bench.json"), "{ model: ");
  await refused([notJson], [/bench\.json: not valid JSON/], notJson);

  const wrongField = join(root, "wrong-field");
  const run = syntheticRun({ model: "alpha" });
  await benchDir(wrongField, run);
  const bad = JSON.parse(JSON.stringify(run.summary)) as Record<string, unknown> & {
    results: Record<string, unknown>[];
  };
  bad.results[1]!.latencyMedianMs = "fast";
  await writeFile(join(wrongField, "bench.json"), JSON.stringify(bad));
  await refused([wrongField], [/not a bench summary/, /field results\[1\]\.latencyMedianMs/], wrongField);

  const notSummary = join(root, "not-summary");
  await mkdir(notSummary);
  await writeFile(join(notSummary, "bench.json"), JSON.stringify([{ model: "x", scenario: "sometimes" }]));
  await refused([notSummary], [/field \[0\]\.scenario/], notSummary);

  const badRaw = await benchDir(join(root, "bad-raw"), run);
  const raw = JSON.parse(JSON.stringify(run.raw)) as {
    coldStarts: { report: { trace: { events: { unit: string }[] } } }[];
  };
  raw.coldStarts[2]!.report.trace.events[0]!.unit = "X";
  await writeFile(join(badRaw, "raw", "alpha.json"), JSON.stringify(raw));
  await refused(
    [badRaw],
    [/raw\/alpha\.json: not bench raw data/, /coldStarts\[2\]\.report\.trace\.events\[0\]\.unit/],
    badRaw,
  );
});

test("output errors: several directories without --out, an --out that cannot be written, a run given twice", async () => {
  const a = await benchDir(join(root, "a"), syntheticRun({ model: "alpha" }));
  const b = await benchDir(join(root, "b"), syntheticRun({ model: "beta" }));
  await refused([a, b], [/2 directories given; name where the combined report goes with --out/]);

  const file = join(root, "a-file");
  await writeFile(file, "");
  await refused(
    [a, "--out", join(file, "report")],
    [/--out .*a-file\/report: .*a-file is a file, not a directory/],
  );

  const again = await benchDir(join(root, "again"), syntheticRun({ model: "alpha" }));
  const out = join(root, "twice");
  await refused([a, again, "--out", out], [/alpha \(reload, cache warm\) appears twice/], out);
});
