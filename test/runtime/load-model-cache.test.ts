// cicada without a prepared cache: the first cold start runs the bundle's own graph (it must not pay
// MiniLoader's build, several plain cold starts), the cache is built after the first answer, and the
// next cold start uses it on the calling thread. A cache that cannot be written never fails a request.
import { test } from "node:test";
import assert from "node:assert/strict";
import { mkdtemp, readdir, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { openBundle } from "../../src/format/bundle.js";
import { importModel } from "../../src/importer/import-model.js";
import { similarity } from "../../src/metrics/similarity.js";
import { isCicadaError } from "../../src/errors.js";
import { loadModel, prepareModel } from "../../src/runtime/load-model.js";
import { findOptimizedStages } from "../../src/runtime/miniloader/ensure.js";
import { runEager } from "../../src/runtime/reference-runner.js";
import { createRuntime } from "../../src/runtime/runtime.js";
import { mountTmpfs } from "../format/tmpfs.js";
import { inputX, writeMlp } from "../importer/tiny-models.js";

const root = await mkdtemp(join(tmpdir(), "cicada-cache-"));
test.after(() => rm(root, { recursive: true, force: true }));
const source = await writeMlp(root, 4, 32);
const bundleDir = join(root, "mlp.bundle");
await importModel(source, bundleDir, { stages: 2 });
const feeds = inputX(7, 32);
const expected = (await runEager(source, feeds)).outputs.y!;

async function coldStart(cacheRoot: string) {
  const runtime = await createRuntime({ cacheRoot, intraOpNumThreads: 1 });
  try {
    const model = await loadModel(runtime, bundleDir, { strategy: "cicada" });
    const run = await model.run(feeds);
    await model.dispose();
    return { run, plan: model.plan, workersStarted: runtime.pool.started };
  } finally {
    // Waits for the build started after the first answer.
    await runtime.close();
  }
}

test("an empty cache: the bundle's graph now, MiniLoader's entry after the answer, then used", async () => {
  const cache = join(root, "cache");
  const bundle = await openBundle(bundleDir);
  const first = await coldStart(cache);
  assert.ok(similarity(first.run.outputs.y!.data, expected.data).cosine >= 0.99999);
  assert.equal(first.plan, "whole");
  // No retrieval of a cached data file: the merged bundle graph was built from the bundle's weights.
  assert.ok(!first.run.trace.events.some((e) => e.unit === "R"), "no cache file was read");
  assert.equal(first.workersStarted, 0, "the first cold start ran on the calling thread");
  const entry = await findOptimizedStages(bundle, cache);
  assert.ok(entry?.whole, "MiniLoader's entry was built after the first answer");
  const second = await coldStart(cache);
  assert.ok(similarity(second.run.outputs.y!.data, expected.data).cosine >= 0.99999);
  assert.equal(second.workersStarted, 0, "a verified whole graph runs on the calling thread");
  const created = second.run.trace.events.find((e) => e.unit === "A");
  assert.equal(created?.worker, "main");
  assert.equal(created?.bytes, entry.whole.dataBytes, "the session mapped MiniLoader's whole graph");
});

test("a cache that cannot be written: every cold start still answers, the build only warns", async () => {
  const blocker = join(root, "not-a-directory");
  await writeFile(blocker, "a file where the cache root's parent should be");
  const warnings: string[] = [];
  const onWarning = (w: Error) => warnings.push(w.message);
  process.on("warning", onWarning);
  try {
    for (let i = 0; i < 2; i++) {
      const { run } = await coldStart(join(blocker, "cache"));
      assert.ok(similarity(run.outputs.y!.data, expected.data).cosine >= 0.99999);
    }
    await new Promise((r) => setImmediate(r));
    assert.ok(
      warnings.some((w) => /background work failed/.test(w)),
      warnings.join("\n"),
    );
  } finally {
    process.off("warning", onWarning);
  }
});

test("MiniLoader's build on a disk without room for it: E_NO_SPACE before writing; cicada still answers", async (t) => {
  const fs = await mountTmpfs(256 << 10);
  if ("skip" in fs) return t.skip(fs.skip);
  try {
    // 512 KiB of weights: the entry needs twice that (stages and the whole graph), the disk has 256 KiB.
    const wideSource = await writeMlp(join(root, "wide"), 2, 256);
    const wide = join(root, "wide.bundle");
    await importModel(wideSource, wide, { stages: 2 });
    const wideFeeds = inputX(3, 256);
    const wideExpected = (await runEager(wideSource, wideFeeds)).outputs.y!;
    const cache = join(fs.dir, "cache");
    const runtime = await createRuntime({ cacheRoot: cache, intraOpNumThreads: 1 });
    try {
      await assert.rejects(prepareModel(runtime, wide, "cicada"), (e: unknown) => {
        assert.ok(isCicadaError(e, "E_NO_SPACE"), String(e));
        assert.match(e.message, /MiniLoader's cache entry for .*needs [\d,]+ bytes/);
        return true;
      });
      // The build after the answer fails the same way: only a warning; the answer is right.
      const model = await loadModel(runtime, wide, { strategy: "cicada" });
      const run = await model.run(wideFeeds);
      await model.dispose();
      assert.ok(similarity(run.outputs.y!.data, wideExpected.data).cosine >= 0.99999);
    } finally {
      await runtime.close();
    }
    assert.deepEqual(await readdir(join(cache, "miniloader")).catch(() => []), [], "nothing written");
  } finally {
    await fs.unmount();
  }
});
