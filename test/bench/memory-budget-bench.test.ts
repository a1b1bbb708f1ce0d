// `cicada bench --memory-budget-mb`: strategies that copy more weights than the budget allows are refused
// before allocating and reported as refused (not run again); those that map their weights are measured
// under it, checked against eager. A generated MLP of 3 x 64 MiB makes the copies large next to an
// instance's own memory. The report written with --out lists the refusals.
import assert from "node:assert/strict";
import { mkdtemp, readFile, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { test } from "node:test";
import type { BenchSummary } from "../../src/bench/cold-start-types.js";
import { importModel } from "../../src/importer/import-model.js";
import { writeMlp } from "../importer/tiny-models.js";
import { cicada, json } from "../support/cli.js";

const root = await mkdtemp(join(tmpdir(), "cicada-bench-budget-"));
test.after(() => rm(root, { recursive: true, force: true }));

test("bench --memory-budget-mb 200: eager and pisel refused, mini and cicada measured", async () => {
  const bundleDir = join(root, "bundle");
  await importModel(await writeMlp(root, 3, 4096), bundleDir, { stages: 3 });
  const args = ["bench", "--model", bundleDir, "--strategies", "eager,pisel,mini,cicada", "--repeat", "1"];
  const out = join(root, "out");
  const r = await cicada([...args, "--memory-budget-mb", "200", "--json", "--out", out], {
    CICADA_CACHE: join(root, "cache"),
  });
  assert.equal(r.code, 0, r.stderr);
  const s = json<BenchSummary>(r);
  assert.equal(s.memoryBudgetBytes, 200 * 2 ** 20);
  assert.deepEqual(
    (s.refused ?? []).map((x) => x.strategy),
    ["eager", "pisel"],
  );
  for (const x of s.refused ?? []) assert.match(x.message, /needs about .* MiB .* budget of 200\.0 MiB/);
  assert.deepEqual(
    s.results.map((x) => x.strategy),
    ["mini", "cicada"],
  );
  for (const x of s.results) assert.ok(x.cosineMin >= 0.99999, `${x.strategy}: cosine ${x.cosineMin}`);
  assert.match(r.stderr, /eager: refused/);
  // The report says so too.
  const report = await readFile(join(out, "report.md"), "utf8");
  assert.match(report, /memory budget of 200 MiB/);
  assert.match(report, /- pisel: refused before allocating \(.*needs about/);
  const process = await cicada([...args, "--scenario", "process", "--memory-budget-mb", "200"], {
    CICADA_CACHE: join(root, "cache"),
  });
  assert.match(process.stderr, /E_USAGE.*fresh and reload/s);
});
