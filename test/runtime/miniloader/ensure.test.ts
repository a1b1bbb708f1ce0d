// MiniLoader's entry holds the forms asked of it: a whole graph alone (what cicada's auto plan runs) takes
// one copy of the weights, not two; asked for its stages later, the entry gains them without touching the
// whole graph's files; the planner's lookup finds the form it runs. Concurrent callers in one process
// share one build.
import { test } from "node:test";
import assert from "node:assert/strict";
import { mkdtemp, readdir, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { identityOrGone } from "../../../src/cache/integrity.js";
import { openBundle, type Bundle } from "../../../src/format/bundle.js";
import { importModel } from "../../../src/importer/import-model.js";
import { buildThreads } from "../../../src/runtime/miniloader/build-thread.js";
import { ensureOptimizedStages, findOptimizedStages } from "../../../src/runtime/miniloader/ensure.js";
import { formsFor, wholeModelMaxBytes } from "../../../src/runtime/miniloader/plan.js";
import { isVerified } from "../../../src/runtime/miniloader/verify.js";
import { writeMlp } from "../../importer/tiny-models.js";

const root = await mkdtemp(join(tmpdir(), "cicada-miniloader-ensure-"));
test.after(() => rm(root, { recursive: true, force: true }));
const source = await writeMlp(join(root, "mlp"), 4, 128);
await importModel(source, join(root, "bundle"), { stages: 2 });
const bundle = await openBundle(join(root, "bundle"));

test("an entry built for the whole plan holds the whole graph only, and gains the stages when asked", async () => {
  const cache = join(root, "cache");
  const whole = await ensureOptimizedStages(bundle, cache, { forms: ["whole"] });
  assert.ok(whole.built && whole.entry.whole);
  assert.deepEqual(whole.entry.stages, []);
  assert.deepEqual(
    (await readdir(whole.entry.dir)).filter((f) => f.endsWith(".data")),
    ["whole.data"],
  );
  // The planner finds the form it runs; a lookup for the stages does not find them.
  assert.equal((await findOptimizedStages(bundle, cache))?.whole?.dataPath, whole.entry.whole.dataPath);
  assert.equal(await findOptimizedStages(bundle, cache, { forms: ["stages"] }), undefined);
  assert.ok(isVerified(whole.entry), "built, so verified");

  const ids = [whole.entry.whole.modelPath, whole.entry.whole.dataPath].map(identityOrGone);
  const both = await ensureOptimizedStages(bundle, cache, { forms: ["stages"] });
  assert.ok(both.built);
  assert.equal(both.entry.dir, whole.entry.dir);
  assert.equal(both.entry.buildId, whole.entry.buildId, "the same build, grown");
  assert.equal(both.entry.stages.length, 2);
  assert.ok(both.entry.whole, "the whole graph is kept");
  assert.deepEqual(
    [both.entry.whole.modelPath, both.entry.whole.dataPath].map(identityOrGone),
    ids,
    "the whole graph's files were not rewritten",
  );
  assert.ok(isVerified(both.entry), "the added stages are stamped; the whole graph's stamp is kept");
  // Every form there: nothing more to build, whatever is asked.
  assert.equal((await ensureOptimizedStages(bundle, cache)).built, false);
  assert.equal((await ensureOptimizedStages(bundle, cache, { forms: ["whole"] })).built, false);
});

test("concurrent callers in one process share one build", async () => {
  const cache = join(root, "shared-cache");
  const before = buildThreads().started;
  const [a, b] = await Promise.all([
    ensureOptimizedStages(bundle, cache, { forms: ["stages"] }),
    ensureOptimizedStages(bundle, cache, { forms: ["stages"] }),
  ]);
  assert.equal(buildThreads().started - before, 1);
  assert.equal(a.entry.buildId, b.entry.buildId);
  assert.deepEqual([a.built, b.built].sort(), [false, true]);
});

test("a model too large for a whole graph gets its stages, whatever is asked", () => {
  const sized = (bytes: number) => ({ manifest: { totalWeightBytes: bytes } }) as unknown as Bundle;
  const limit = wholeModelMaxBytes();
  assert.deepEqual(formsFor(sized(limit)), ["stages", "whole"]);
  assert.deepEqual(formsFor(sized(limit), ["whole"]), ["whole"]);
  assert.deepEqual(formsFor(sized(limit + 1)), ["stages"]);
  assert.deepEqual(formsFor(sized(limit + 1), ["whole"]), ["stages"]);
});
