// A model eager cannot load (its original file gone, as for a model larger than memory whose source was
// removed after import): the benchmark checks every output against the sequential reference runner on the
// bundle and takes cicada's warm run as the floor, and says so in the summary.
import assert from "node:assert/strict";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { test } from "node:test";
import type { BenchSummary } from "../../src/bench/cold-start-types.js";
import { importModel } from "../../src/importer/import-model.js";
import { generateZooModel } from "../../src/zoo/registry.js";
import { cicada, json } from "../support/cli.js";

const root = await mkdtemp(join(tmpdir(), "cicada-bench-seq-"));
test.after(() => rm(root, { recursive: true, force: true }));

test("bench on a bundle whose source is gone: outputs checked against the sequential runner", async () => {
  const model = await generateZooModel("tiny-llama", join(root, "model"), { seed: 2 });
  const bundleDir = join(root, "bundle");
  await importModel(model.modelPath, bundleDir, { stages: 3 });
  await rm(join(root, "model"), { recursive: true });
  const args = ["bench", "--model", bundleDir, "--strategies", "mini,cicada", "--repeat", "1", "--json"];
  const r = await cicada(args, { CICADA_CACHE: join(root, "cache") });
  assert.equal(r.code, 0, r.stderr);
  const s = json<BenchSummary>(r);
  assert.equal(s.referenceRunner, "sequential");
  assert.equal(s.floorStrategy, "cicada");
  assert.ok(s.warmRunMedianMs > 0);
  for (const x of s.results) {
    assert.ok(x.cosineMin >= 0.99999, `${x.strategy}: cosine ${x.cosineMin}`);
    // Every stage's outputs were compared too (mini runs the stages).
    if (x.strategy === "mini") assert.ok(x.stageCosineMin.every((c) => c !== null && c >= 0.99999));
  }
  assert.match(r.stderr, /reference outputs from sequential; warm run of cicada/);
});
