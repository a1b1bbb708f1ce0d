// The runtime on bundles and caches that are stale, corrupt or crafted: each run ends in eager's output or
// a coded error, never in another model's output or in bytes of a file the bundle does not own.
import { test } from "node:test";
import assert from "node:assert/strict";
import { cp, mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { isCicadaError } from "../../src/errors.js";
import { openBundle } from "../../src/format/bundle.js";
import { sha256Of } from "../../src/format/checksum.js";
import type { Manifest } from "../../src/format/manifest.js";
import { decodeModel, encodeModel, setExternal } from "../../src/format/onnx-io.js";
import { importModel } from "../../src/importer/import-model.js";
import { similarity } from "../../src/metrics/similarity.js";
import { loadModel, type LoadOptions } from "../../src/runtime/load-model.js";
import { ensureOptimizedStages } from "../../src/runtime/miniloader/ensure.js";
import { runEager } from "../../src/runtime/reference-runner.js";
import { createRuntime } from "../../src/runtime/runtime.js";
import { STRATEGIES } from "../../src/config.js";
import type { HostTensor } from "../../src/runtime/host-tensor.js";
import { floatTensor, ifModel, inputX, saveModel, values, W, writeMlp } from "../importer/tiny-models.js";

const WIDTH = 32;
const root = await mkdtemp(join(tmpdir(), "cicada-trust-"));
// One cache for every bundle here: what made equal weights share entries.
const runtime = await createRuntime({ cacheRoot: join(root, "cache"), intraOpNumThreads: 1 });
test.after(async () => {
  await runtime.close();
  await rm(root, { recursive: true, force: true });
});

const PLANS: { strategy: LoadOptions["strategy"]; plan?: "whole" | "pipeline" }[] = [
  ...STRATEGIES.filter((s) => s !== "cicada").map((strategy) => ({ strategy })),
  { strategy: "cicada", plan: "whole" },
  { strategy: "cicada", plan: "pipeline" },
];

async function runOnce(bundleDir: string, o: LoadOptions, feeds: Record<string, HostTensor>) {
  const model = await loadModel(runtime, bundleDir, o);
  try {
    return await model.run(feeds);
  } finally {
    await model.dispose();
  }
}

function assertClose(found: HostTensor | undefined, expected: HostTensor, what: string): void {
  assert.ok(found, `${what}: no output`);
  const s = similarity(found.data, expected.data);
  assert.ok(s.cosine >= 0.99999, `${what}: cosine ${s.cosine}`);
}

const mlp = await writeMlp(root, 4, WIDTH);
const feeds = inputX(7, WIDTH);

test("bundles with equal weights and different graphs never share a cache entry", async () => {
  // The same weights file behind a graph whose Relus became Sigmoids.
  const model = decodeModel(await readFile(mlp));
  for (const n of model.graph!.node!) if (n.opType === "Relu") n.opType = "Sigmoid";
  const sigmoid = join(mlp, "..", "sigmoid.onnx");
  await writeFile(sigmoid, encodeModel(model));
  const bundles = [
    { dir: join(root, "relu.bundle"), source: mlp },
    { dir: join(root, "sigmoid.bundle"), source: sigmoid },
  ];
  for (const b of bundles) await importModel(b.source, b.dir, { stages: 2 });
  const expected = await Promise.all(bundles.map((b) => runEager(b.source, feeds)));
  assert.ok(similarity(expected[0]!.outputs.y!.data, expected[1]!.outputs.y!.data).cosine < 0.999);
  for (const o of PLANS) {
    for (const [i, b] of bundles.entries()) {
      const run = await runOnce(b.dir, o, feeds);
      assertClose(run.outputs.y, expected[i]!.outputs.y!, `${o.strategy}/${o.plan ?? ""} ${b.source}`);
    }
  }
});

test("a crafted stage graph naming a file in the working directory never reads it", async () => {
  const dir = join(root, "crafted.bundle");
  await cp(join(root, "relu.bundle"), dir, { recursive: true });
  const m = JSON.parse(await readFile(join(dir, "manifest.json"), "utf8")) as Manifest;
  const path = join(dir, "stages", "001.onnx");
  const model = decodeModel(await readFile(path));
  const target = model.graph!.initializer!.find((t) => t.dataLocation === 1)!;
  setExternal(target, { location: "secret.txt", offset: 0, length: WIDTH * WIDTH * 4 });
  const bytes = encodeModel(model);
  await writeFile(path, bytes);
  Object.assign(m.stages[1]!, { fileBytes: bytes.byteLength, fileChecksum: sha256Of(bytes), tensors: [] });
  Object.assign(m.stages[1]!.weights, { length: 0, checksum: "crc32:00000000" });
  await writeFile(join(dir, "manifest.json"), JSON.stringify(m));
  // A recognisable secret in the working directory: 1.5 as float32 everywhere.
  const cwd = process.cwd();
  const secret = new Float32Array(WIDTH * WIDTH).fill(1.5);
  await writeFile(join(root, "secret.txt"), new Uint8Array(secret.buffer));
  process.chdir(root);
  try {
    const expected = (await runEager(mlp, feeds)).outputs.y!;
    for (const o of PLANS) {
      try {
        const run = await runOnce(dir, o, feeds);
        // eager and ort-best run the source model, which is not crafted.
        assertClose(run.outputs.y, expected, `${o.strategy}`);
      } catch (e) {
        assert.ok(isCicadaError(e, "E_BUNDLE_PATH"), `${o.strategy}/${o.plan ?? ""}: ${String(e)}`);
      }
    }
  } finally {
    process.chdir(cwd);
  }
});

test("a corrupt cached graph is rebuilt; a cache file rewritten under a warm model is noticed", async () => {
  const dir = join(root, "relu.bundle");
  const expected = (await runEager(mlp, feeds)).outputs.y!;
  const { entry } = await ensureOptimizedStages(await openBundle(dir), runtime.cacheRoot);
  // An exponent bit of the whole graph's file, then of stage 1's graph.
  for (const file of [entry.whole!.modelPath, entry.stages[1]!.modelPath]) {
    const bytes = await readFile(file);
    const at = Math.floor(bytes.length / 2);
    bytes.writeUInt8(bytes.readUInt8(at) ^ 0x40, at);
    await writeFile(file, bytes);
    for (const o of PLANS.filter((p) => p.strategy === "mini" || p.strategy === "cicada")) {
      const run = await runOnce(dir, o, feeds);
      assertClose(run.outputs.y, expected, `${o.strategy}/${o.plan ?? ""} after ${file} changed`);
    }
  }
  // Warm: the whole graph's data file changes after the model loaded; the next request reloads.
  const model = await loadModel(runtime, dir, { strategy: "cicada", plan: "whole" });
  try {
    assertClose((await model.run(feeds)).outputs.y, expected, "cold");
    const fresh = await ensureOptimizedStages(await openBundle(dir), runtime.cacheRoot);
    const data = await readFile(fresh.entry.whole!.dataPath);
    data.writeUInt8(data.readUInt8(8) ^ 0x40, 8);
    await writeFile(fresh.entry.whole!.dataPath, data);
    const warm = await model.run(feeds);
    assertClose(warm.outputs.y, expected, "after the data file changed");
  } catch (e) {
    assert.ok(isCicadaError(e, "E_BUNDLE_CHECKSUM"), String(e));
  } finally {
    await model.dispose();
  }
});

test("a graph output the model does not produce is an error, not an empty result", async () => {
  const dir = join(root, "no-output.bundle");
  await cp(join(root, "relu.bundle"), dir, { recursive: true });
  const m = JSON.parse(await readFile(join(dir, "manifest.json"), "utf8")) as Manifest;
  const last = m.stages.length - 1;
  const path = join(dir, "stages", `${String(last).padStart(3, "0")}.onnx`);
  const model = decodeModel(await readFile(path));
  // The graph's output renamed; the manifest still promises `y`.
  const out = model.graph!.output![0]!;
  const producer = model.graph!.node!.find((n) => n.output?.includes(out.name!))!;
  producer.output = producer.output!.map((o) => (o === out.name ? "z" : o));
  out.name = "z";
  const bytes = encodeModel(model);
  await writeFile(path, bytes);
  Object.assign(m.stages[last]!, { fileBytes: bytes.byteLength, fileChecksum: sha256Of(bytes) });
  await writeFile(join(dir, "manifest.json"), JSON.stringify(m));
  for (const o of PLANS.filter((p) => p.strategy !== "eager" && p.strategy !== "ort-best")) {
    await assert.rejects(runOnce(dir, o, feeds), (e: unknown) => {
      assert.ok(isCicadaError(e), `${o.strategy}/${o.plan ?? ""}: ${String(e)}`);
      return true;
    });
  }
});

test("a derived graph onnxruntime cannot read back (If-subgraph initializers) is bypassed", async () => {
  // onnxruntime's save with external initializers duplicates an initializer of an If branch (as in
  // Silero VAD), and then refuses the file it wrote: "W_then initializer name is not unique".
  const m = ifModel();
  const branch = m
    .graph!.node!.find((n) => n.opType === "If")!
    .attribute!.find((a) => a.name === "then_branch")!;
  branch.g!.initializer = [floatTensor("W_then", [W, W], values(W * W, 999))];
  m.graph!.initializer = m.graph!.initializer!.filter((t) => t.name !== "W_then");
  const source = await saveModel(root, "if-subgraph.onnx", m);
  const dir = join(root, "if-subgraph.bundle");
  await importModel(source, dir, { stages: 2 });
  const ifFeeds = { ...inputX(), flag: { dtype: "bool" as const, dims: [], data: new Uint8Array([1]) } };
  const expected = (await runEager(source, ifFeeds)).outputs.y!;
  for (const o of PLANS) {
    const run = await runOnce(dir, o, ifFeeds);
    assertClose(run.outputs.y, expected, `${o.strategy}/${o.plan ?? ""}`);
  }
});
