// The hazard rule end to end: the WeightDecoupler's loaders (preload, cicada's pipeline) apply stage i only
// after stage i-1 under `strict`, as the paper's rule says; under `relaxed` the load is still correct and
// its trace says which rule it was measured by. `cicada run --hazard` reaches it from the CLI.
import assert from "node:assert/strict";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { test } from "node:test";
import { importModel } from "../../../src/importer/import-model.js";
import { similarity } from "../../../src/metrics/similarity.js";
import { loadModel, prepareModel } from "../../../src/runtime/load-model.js";
import { randomInputs } from "../../../src/runtime/model-inputs.js";
import { runEager } from "../../../src/runtime/reference-runner.js";
import { createRuntime } from "../../../src/runtime/runtime.js";
import { generateZooModel } from "../../../src/zoo/registry.js";
import { cicada, json } from "../../support/cli.js";

const root = await mkdtemp(join(tmpdir(), "cicada-hazard-"));
const cacheRoot = join(root, "cache");
const runtime = await createRuntime({ cacheRoot, intraOpNumThreads: 1 });
test.after(async () => {
  await runtime.close();
  await rm(root, { recursive: true, force: true });
});

const model = await generateZooModel("tiny-llama", join(root, "model"), { seed: 5 });
const bundleDir = join(root, "bundle");
const { manifest } = await importModel(model.modelPath, bundleDir, { stages: 4 });
const feeds = randomInputs(manifest.inputs, 2);
const eager = await runEager(model.modelPath, feeds);

for (const strategy of ["preload", "cicada"] as const) {
  for (const hazard of ["strict", "relaxed"] as const) {
    test(`${strategy}, ${hazard}: the load follows the rule and matches eager`, async () => {
      await prepareModel(runtime, bundleDir, strategy);
      const loaded = await loadModel(runtime, bundleDir, { strategy, hazard, plan: "pipeline" });
      try {
        const run = await loaded.run(feeds);
        assert.equal(run.trace.hazard, hazard);
        // What the request read from storage is measured (Linux's /proc/self/io); page-cache hits cost 0.
        if (process.platform === "linux") assert.ok(run.trace.storageReadBytes! >= 0, "storageReadBytes");
        for (const [name, expected] of Object.entries(eager.outputs)) {
          const s = similarity(run.outputs[name]!.data, expected.data);
          assert.ok(s.cosine >= 0.99999 && s.nonFiniteMismatches === 0, `${name}: ${JSON.stringify(s)}`);
        }
        const applied = run.trace.events.filter((e) => e.unit === "A").sort((a, b) => a.stage - b.stage);
        assert.deepEqual(
          applied.map((e) => e.stage),
          [0, 1, 2, 3],
          "one A per stage",
        );
        if (hazard === "strict") {
          for (let i = 1; i < applied.length; i++) {
            assert.ok(
              applied[i]!.start >= applied[i - 1]!.end,
              `A_${i} started at ${applied[i]!.start}, before A_${i - 1} ended at ${applied[i - 1]!.end}`,
            );
          }
        }
      } finally {
        await loaded.dispose();
      }
    });
  }
}

test("cicada run --hazard reaches the loader and is reported; a wrong value is refused", async () => {
  const env = { CICADA_CACHE: cacheRoot };
  const args = ["run", bundleDir, "--strategy", "preload", "--json", "--check"];
  const relaxed = await cicada([...args, "--hazard", "relaxed"], env);
  assert.equal(relaxed.code, 0, relaxed.stderr);
  assert.equal(json<{ pipeline: { hazard: string } }>(relaxed).pipeline.hazard, "relaxed");
  const wrong = await cicada([...args, "--hazard", "loose"], env);
  assert.notEqual(wrong.code, 0);
  assert.match(wrong.stderr, /E_USAGE.*--hazard/s);
});
