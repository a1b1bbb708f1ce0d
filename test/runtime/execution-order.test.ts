// The whole graph's data file in execution order: the order is the nodes' first reads (subgraphs
// included), the rewritten file still runs and matches eager, and entries from before are rebuilt.
import { test } from "node:test";
import assert from "node:assert/strict";
import { mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { isCicadaError } from "../../src/errors.js";
import { openBundle } from "../../src/format/bundle.js";
import { externalLocation, readOnnxFile, setExternal } from "../../src/format/onnx-io.js";
import type { GraphProto, TensorProto } from "../../src/format/onnx-types.js";
import { importModel } from "../../src/importer/import-model.js";
import { similarity } from "../../src/metrics/similarity.js";
import { executionOrder } from "../../src/runtime/execution-order.js";
import { ensureOptimizedStages } from "../../src/runtime/miniloader/ensure.js";
import { createSession, releaseSession, runSession } from "../../src/runtime/ort-adapter.js";
import { runEager } from "../../src/runtime/reference-runner.js";
import { inputX, node, writeMlp } from "../importer/tiny-models.js";

const root = await mkdtemp(join(tmpdir(), "cicada-order-"));
test.after(() => rm(root, { recursive: true, force: true }));

function external(name: string, offset: number, location = "w.data"): TensorProto {
  const t: TensorProto = { name, dims: [4], dataType: 1 };
  setExternal(t, { location, offset, length: 16 });
  return t;
}

test("executionOrder: first reads in node order, subgraphs included, unread ones last in file order", () => {
  const graph: GraphProto = {
    node: [
      node("MatMul", ["x", "b"], ["h"]),
      node(
        "If",
        ["cond"],
        ["k"],
        [{ name: "then_branch", type: 5, g: { node: [node("Add", ["h", "c"], ["k"])] } }],
      ),
      node("Add", ["k", "a"], ["y"]),
      node("Mul", ["y", "b"], ["z"]),
    ],
    initializer: [
      external("a", 0),
      external("b", 16),
      external("c", 32),
      external("u2", 64),
      external("u1", 48),
    ],
  };
  assert.deepEqual(
    executionOrder(graph, "w.data", "g.onnx").map((t) => t.name),
    ["b", "c", "a", "u1", "u2"],
  );
  graph.initializer!.push(external("elsewhere", 0, "other.data"));
  assert.throws(
    () => executionOrder(graph, "w.data", "g.onnx"),
    (e: unknown) => isCicadaError(e, "E_ONNX_EXTERNAL_DATA") && /elsewhere.*other\.data/.test(String(e)),
  );
});

test("MiniLoader's whole graph: data in execution order, aligned, runs like the original; older entries rebuilt", async () => {
  const source = await writeMlp(join(root, "mlp"), 6, 256);
  await importModel(source, join(root, "bundle"), { stages: 3 });
  const bundle = await openBundle(join(root, "bundle"));
  const cacheRoot = join(root, "cache");
  const { entry, built } = await ensureOptimizedStages(bundle, cacheRoot);
  assert.ok(built && entry.whole);
  const { model } = await readOnnxFile(entry.whole.modelPath);
  const ordered = executionOrder(model.graph!, "whole.data", entry.whole.modelPath);
  const offsets = ordered.map((t) => externalLocation(t, "whole.onnx"));
  assert.ok(offsets.length >= 6, `${offsets.length} external weights`);
  offsets.forEach((o, i) => {
    if (i > 0)
      assert.ok(o.offset >= offsets[i - 1]!.offset + offsets[i - 1]!.length, `tensor ${i} after ${i - 1}`);
    if (o.length >= 4096) assert.equal(o.offset % 4096, 0, `tensor ${i} on a page`);
  });
  const last = offsets.at(-1)!;
  assert.equal(
    (await readFile(entry.whole.dataPath)).byteLength,
    last.offset + last.length,
    "no slack at the end",
  );
  const session = await createSession(entry.whole.modelPath, { graphOptimizationLevel: "disabled" });
  try {
    const got = await runSession(session, inputX(1, 256));
    const want = await runEager(source, inputX(1, 256));
    assert.ok(similarity(got.y!.data, want.outputs.y!.data).cosine >= 0.99999);
  } finally {
    await releaseSession(session);
  }
  // An entry written before the layout existed (no `layout` in its index) is rebuilt, not used.
  const index = join(entry.dir, "entry.json");
  const json = JSON.parse(await readFile(index, "utf8")) as { whole: Record<string, unknown> };
  delete json.whole.layout;
  await writeFile(index, JSON.stringify(json));
  assert.equal((await ensureOptimizedStages(bundle, cacheRoot)).built, true);
  assert.equal((await ensureOptimizedStages(bundle, cacheRoot)).built, false);
});
