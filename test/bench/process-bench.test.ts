// `cicada bench --scenario process` on tiny models: every cold start a new node process running a handler
// file (cicada-node by its public name from the built package, or plain onnxruntime-node for eager and
// ort-best), with outputs checked against the eager script, the breakdown filled in, rounds interleaved,
// and nothing left in the cache root. Invariants only: nothing here depends on how fast anything ran.
import { test } from "node:test";
import assert from "node:assert/strict";
import { existsSync } from "node:fs";
import { mkdtemp, readFile, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { benchProcesses, type ProcessBenchSummary } from "../../src/bench/process-bench.js";
import { HANDLER_SOURCES } from "../../src/bench/process-handlers.js";
import { importModel } from "../../src/importer/import-model.js";
import { generateZooModel } from "../../src/zoo/registry.js";
import { ensureBuilt } from "../support/build.js";
import { cicada, json } from "../support/cli.js";

const root = await mkdtemp(join(tmpdir(), "cicada-bench-process-"));
const cacheRoot = join(root, "cache");
test.after(() => rm(root, { recursive: true, force: true }));

const PARTS = ["nodeStart", "inputs", "import", "runtimeStart", "load", "firstRun", "write", "exit"] as const;

function checkSummary(s: ProcessBenchSummary, contestants: string[], repeat: number): void {
  assert.equal(s.scenario, "process");
  assert.equal(s.repeat, repeat);
  assert.deepEqual(
    s.results.map((r) => r.contestant),
    contestants,
  );
  for (const r of s.results) {
    assert.equal(r.firstOutput.n, repeat, `${r.contestant}: one counted run per round`);
    assert.ok(
      r.firstOutput.median > 0 && r.firstOutput.median <= r.exit.median,
      `${r.contestant}: output before exit`,
    );
    assert.ok(r.cosineMin >= 0.9999, `${r.contestant}: cosine ${r.cosineMin}`);
    for (const p of PARTS)
      assert.ok(Number.isFinite(r.breakdown[p]) && r.breakdown[p] >= 0, `${r.contestant}: ${p}`);
    assert.ok(r.breakdown.nodeStart > 0 && r.breakdown.import > 0);
    if (r.handler !== "cicada")
      assert.equal(r.breakdown.runtimeStart, 0, "the plain scripts have no runtime");
  }
  const eager = s.results.find((r) => r.contestant === "eager");
  if (eager) assert.equal(eager.ratioToEager, 1);
}

test("the handlers: cicada's imports the package by its public name, the plain scripts no project code", () => {
  assert.match(HANDLER_SOURCES.cicada, /await import\("cicada-node"\)/);
  for (const plain of [HANDLER_SOURCES.eager, HANDLER_SOURCES["ort-best"]]) {
    assert.match(plain, /await import\("onnxruntime-node"\)/);
    assert.doesNotMatch(plain, /cicada-node|\.\.\/|src\//);
  }
});

test(
  "cicada bench --scenario process --repeat 1 --json: eager, ort-best and cicada in fresh processes",
  { timeout: 300_000 },
  async () => {
    await ensureBuilt();
    const out = join(root, "out");
    const r = await cicada(
      [
        "bench",
        ...["--model", "tiny-resnet", "--scenario", "process", "--repeat", "1"],
        ...["--strategies", "eager,ort-best,cicada", "--json", "--out", out],
      ],
      { CICADA_CACHE: cacheRoot },
    );
    assert.equal(r.code, 0, r.stderr);
    const s = json<ProcessBenchSummary>(r);
    checkSummary(s, ["eager", "ort-best", "cicada"], 1);
    assert.equal(s.cache, "warm");
    assert.deepEqual(
      s.results.map((x) => x.handler),
      ["eager", "ort-best", "cicada"],
    );
    const raw = JSON.parse(await readFile(join(out, "raw", "tiny-resnet.json"), "utf8")) as {
      runs: { round: number; position: number; contestant: string }[];
      files: Record<string, string[]>;
    };
    // Warm-up round then round 1, each contestant once per round, the order rotated.
    assert.deepEqual(
      raw.runs.map((x) => `${x.round}:${x.contestant}`),
      ["0:eager", "0:ort-best", "0:cicada", "1:ort-best", "1:cicada", "1:eager"],
    );
    for (const c of ["eager", "ort-best", "cicada"])
      assert.ok((raw.files[c]?.length ?? 0) > 0, `${c}'s files`);
    assert.ok(!existsSync(join(cacheRoot, "bench-process")), "the scratch project is removed");
  },
);

test(
  "process scenario with weights evicted, an int64 model and a pipeline plan",
  { timeout: 300_000 },
  async () => {
    await ensureBuilt();
    const model = await generateZooModel("tiny-llama", join(root, "tiny-llama"), { seed: 2 });
    const bundleDir = join(root, "tiny-llama.bundle");
    await importModel(model.modelPath, bundleDir, { stages: 3 });
    const { summaries, raws } = await benchProcesses([{ name: "tiny-llama", bundleDir }], {
      strategies: ["cicada", "ort-best"],
      repeat: 1,
      cache: "cold",
      plan: "pipeline",
      cacheRoot,
    });
    checkSummary(summaries[0]!, ["cicada", "ort-best"], 1);
    const runs = raws[0]!.runs;
    assert.equal(runs.length, 4);
    for (const run of runs) assert.ok(run.eviction, "every cold start was preceded by an eviction check");
  },
);
