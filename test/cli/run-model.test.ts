// `cicada run MODEL.onnx` with a strategy that needs a bundle: the model is imported into the cache once
// and run, checked against eager; a second run reuses the imported bundle.
import { test } from "node:test";
import assert from "node:assert/strict";
import { mkdtemp, readdir, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { cicada, json } from "../support/cli.js";
import { writeMlp } from "../importer/tiny-models.js";

const root = await mkdtemp(join(tmpdir(), "cicada-run-model-"));
test.after(() => rm(root, { recursive: true, force: true }));

test("cicada run MODEL.onnx --strategy mini imports into the cache, runs and matches eager", async () => {
  const model = await writeMlp(root, 3, 32);
  const env = { CICADA_CACHE: join(root, "cache") };
  const first = await cicada(["run", model, "--strategy", "mini", "--check", "--json"], env);
  assert.equal(first.code, 0, first.stderr);
  assert.match(first.stderr, /into the cache/);
  const out = json<{ strategy: string; check?: unknown }>(first);
  assert.equal(out.strategy, "mini");
  const bundles = await readdir(join(root, "cache", "bundles"));
  assert.equal(bundles.length, 1);
  const again = await cicada(["run", model, "--strategy", "cicada", "--check"], env);
  assert.equal(again.code, 0, again.stderr);
  assert.doesNotMatch(again.stderr, /into the cache/, "the imported bundle is reused");
  assert.deepEqual(await readdir(join(root, "cache", "bundles")), bundles);
});
