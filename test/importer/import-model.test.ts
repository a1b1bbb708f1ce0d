import { test } from "node:test";
import assert from "node:assert/strict";
import { mkdtemp, readFile, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { crc32 } from "node:zlib";
import { WEIGHTS_FILE, type Manifest } from "../../src/format/manifest.js";
import { decodeModel } from "../../src/format/onnx-io.js";
import { PAGE_BYTES } from "../../src/format/safetensors.js";
import { importModel } from "../../src/importer/import-model.js";
import type { HostTensor } from "../../src/runtime/host-tensor.js";
import { assertBundleMatchesModel, assertSameOutputs, readBytes, runBundle } from "./stage-runner.js";
import { ifModel, inputX, loopModel, residualModel, saveModel, values, writeMlp } from "./tiny-models.js";

async function withTemp(fn: (dir: string) => Promise<void>): Promise<void> {
  const dir = await mkdtemp(join(tmpdir(), "cicada-import-"));
  try {
    await fn(dir);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

/** Parses weights.safetensors' header by hand (not with src/format/safetensors.ts) and checks the layout. */
async function checkWeightsFile(bundle: string, manifest: Manifest): Promise<void> {
  const path = join(bundle, WEIGHTS_FILE);
  const file = await readFile(path);
  const headerBytes = Number(file.readBigUInt64LE(0));
  const dataStart = 8 + headerBytes;
  assert.equal(dataStart % PAGE_BYTES, 0, "data section starts on a page");
  const header = JSON.parse(file.subarray(8, dataStart).toString("utf8")) as Record<
    string,
    { dtype: string; shape: number[]; data_offsets: [number, number] }
  >;
  const spans = Object.entries(header)
    .filter(([k]) => k !== "__metadata__")
    .map(([key, v]) => ({ key, ...v }))
    .sort((a, b) => a.data_offsets[0] - b.data_offsets[0]);
  let end = 0;
  for (const s of spans) {
    assert.equal(s.data_offsets[0], end, `'${s.key}' starts where the previous tensor ends`);
    end = s.data_offsets[1];
  }
  assert.equal(dataStart + end, file.length, "tensors tile the data section");
  for (const stage of manifest.stages) {
    assert.equal(stage.weights.offset % PAGE_BYTES, 0, `stage ${stage.index} range is page aligned`);
    const range = file.subarray(stage.weights.offset, stage.weights.offset + stage.weights.length);
    assert.equal(stage.weights.checksum, `crc32:${crc32(range).toString(16).padStart(8, "0")}`);
    for (const t of stage.tensors) {
      const entry = header[t.key]!;
      assert.ok(entry, `'${t.key}' is in the header`);
      assert.deepEqual(entry.shape, t.shape);
      assert.equal(dataStart + entry.data_offsets[0], stage.weights.offset + t.offset, `'${t.key}' offset`);
      assert.equal(entry.data_offsets[1] - entry.data_offsets[0], t.length);
    }
  }
}

test("a 12-layer MLP with external data: one activation per cut, balanced stages, same outputs", async () => {
  await withTemp(async (dir) => {
    const model = await writeMlp(dir, 12, 32);
    const feeds: Record<string, HostTensor> = {
      x: { dtype: "float32", dims: [1, 32], data: values(32, 1, 1) },
    };
    for (const stages of [1, 4, 5, 12]) {
      const out = join(dir, `bundle-${stages}`);
      const progress: number[] = [];
      const s = await importModel(model, out, { stages, onProgress: (_p, done) => progress.push(done) });
      assert.equal(s.manifest.stages.length, stages);
      assert.deepEqual(
        s.crossings,
        new Array<number>(stages - 1).fill(1),
        "a plain chain crosses one tensor",
      );
      for (const st of s.manifest.stages.slice(1)) assert.equal(st.inputs.length, 1);
      assert.equal(s.manifest.model.family, "mlp");
      assert.equal(progress.at(-1), 12 * 32 * 32 * 4);
      const ratio = s.largestStageBytes / s.idealStageBytes;
      // 12 equal layers: 4 stages of 3 layers each are perfect; 5 stages cannot beat 3 layers in one.
      if (stages === 4 || stages === 12) assert.equal(ratio, 1);
      if (stages === 5) assert.equal(s.largestStageBytes, 3 * 32 * 32 * 4);
      await checkWeightsFile(out, s.manifest);
      await assertBundleMatchesModel(out, model, feeds);
    }
  });
});

test("default stage count and --max-stage-mb style limits", async () => {
  await withTemp(async (dir) => {
    const model = await writeMlp(dir, 12, 32);
    const layer = 32 * 32 * 4;
    const auto = await importModel(model, join(dir, "auto"));
    assert.equal(auto.manifest.stages.length, 4, "tiny models get the minimum of 4 stages");
    const limited = await importModel(model, join(dir, "limited"), { maxStageBytes: 5 * layer });
    assert.equal(limited.manifest.stages.length, 3, "the fewest stages of at most 5 layers");
    assert.ok(limited.manifest.stages.every((s) => s.tensors.reduce((n, t) => n + t.length, 0) <= 5 * layer));
    await assert.rejects(
      importModel(model, join(dir, "too-small"), { maxStageBytes: layer - 1 }),
      (e: Error & { code?: string }) => e.code === "E_USAGE" && /node 'fc0' \(MatMul\)/.test(e.message),
    );
  });
});

test("embedded weights, constants, residuals, shared weight, bool/int64 crossings, two outputs", async () => {
  await withTemp(async (dir) => {
    const model = await saveModel(dir, "residual.onnx", residualModel());
    const wholeFeeds = inputX();
    for (const stages of [2, 3, 5, 8]) {
      const out = join(dir, `b${stages}`);
      const s = await importModel(model, out, { stages });
      assert.equal(s.manifest.stages.length, stages);
      assert.deepEqual(
        s.manifest.outputs.map((o) => o.name),
        ["mid", "y"],
      );
      const producers = s.manifest.outputs.map((o) =>
        s.manifest.stages.findIndex((st) => st.outputs.some((x) => x.name === o.name)),
      );
      if (stages >= 5) assert.ok(producers[0]! < producers[1]!, "mid and y come from different stages");
      const readers = s.manifest.stages.filter((st) => st.inputs.some((i) => i.name === "x")).length;
      assert.ok(readers >= 2, "the graph input feeds several stages");
      const w0 = s.manifest.stages.filter((st) => st.tensors.some((t) => t.name === "W0"));
      if (w0.length > 1) {
        assert.equal(s.duplicatedBytes, 1024 * (w0.length - 1));
        assert.ok(
          w0.slice(1).every((st) => st.tensors.find((t) => t.name === "W0")!.key === `W0@stage${st.index}`),
        );
      } else {
        assert.equal(s.duplicatedBytes, 0);
      }
      const crossing = s.manifest.stages.flatMap((st) => st.inputs);
      if (crossing.some((i) => i.name === "mask")) {
        assert.equal(crossing.find((i) => i.name === "mask")!.dtype, "bool");
      }
      if (crossing.some((i) => i.name === "x_shape")) {
        assert.equal(crossing.find((i) => i.name === "x_shape")!.dtype, "int64");
      }
      await checkWeightsFile(out, s.manifest);
      await assertBundleMatchesModel(out, model, wholeFeeds);
    }
    // At 8 stages the shared weight W0 (layer 0 and layer 6) cannot stay in one stage.
    const s8 = JSON.parse(await readFile(join(dir, "b8", "manifest.json"), "utf8")) as Manifest;
    assert.equal(s8.stages.filter((st) => st.tensors.some((t) => t.name === "W0")).length, 2);
    const constants = s8.stages.filter((st) => (st.opCounts.Constant ?? 0) > 0).length;
    assert.ok(constants >= 3, "the Constant 0.5 is replicated into every stage that reads it");
  });
});

test("an If node stays whole and gets its branches' outer-scope tensors", async () => {
  await withTemp(async (dir) => {
    const model = await saveModel(dir, "if.onnx", ifModel());
    for (const stages of [2, 3, 4]) {
      const out = join(dir, `b${stages}`);
      const s = await importModel(model, out, { stages });
      const withIf = s.manifest.stages.find((st) => st.opCounts.If)!;
      assert.ok(
        withIf.tensors.some((t) => t.name === "W_then"),
        "the then-branch weight is in the If's stage",
      );
      assert.ok(withIf.opCounts.Constant, "the else-branch constant is replicated into the If's stage");
      const structure = decodeModel(await readFile(join(out, withIf.file)));
      assert.ok(structure.graph!.initializer!.find((t) => t.name === "W_then")!.dataLocation === 1);
      // h2 is read only inside the branches: the stage computes it or receives it as an input.
      const computesH2 = structure.graph!.node!.some((n) => n.output?.includes("h2"));
      assert.equal(
        withIf.inputs.some((i) => i.name === "h2"),
        !computesH2,
      );
      for (const flag of [true, false]) {
        const feeds: Record<string, HostTensor> = {
          ...inputX(3),
          flag: { dtype: "bool", dims: [], data: new Uint8Array([flag ? 1 : 0]) },
        };
        await assertBundleMatchesModel(out, model, feeds);
      }
    }
  });
});

test("a Loop whose body reads outer-scope weights runs the same in stages", async () => {
  await withTemp(async (dir) => {
    const model = await saveModel(dir, "loop.onnx", loopModel());
    for (const stages of [2, 4]) {
      const out = join(dir, `b${stages}`);
      const s = await importModel(model, out, { stages });
      const withLoop = s.manifest.stages.find((st) => st.opCounts.Loop)!;
      assert.ok(withLoop.tensors.some((t) => t.name === "W_loop"));
      assert.equal(withLoop.opCounts.Constant, 2, "trip count and condition are replicated constants");
      if (stages === 4) {
        // Four nodes, four stages: the Loop's output crosses, typed from the body's output.
        const looped = s.manifest.stages.flatMap((st) => st.outputs).find((o) => o.name === "looped");
        assert.equal(looped?.dtype, "float32");
      }
      await assertBundleMatchesModel(out, model, inputX(5));
    }
  });
});

test("models exported by PyTorch import and match their golden outputs", async () => {
  const fixtures = join(import.meta.dirname, "..", "fixtures");
  for (const name of ["torch-cnn", "torch-transformer"]) {
    await withTemp(async (dir) => {
      const io = JSON.parse(await readFile(join(fixtures, `${name}.io.json`), "utf8")) as {
        inputs: Record<string, { dtype: "float32" | "int64"; dims: number[]; data: number[] }>;
        outputs: Record<string, { dtype: "float32"; dims: number[]; data: number[] }>;
      };
      const toHost = (t: { dtype: "float32" | "int64"; dims: number[]; data: number[] }): HostTensor => ({
        dtype: t.dtype,
        dims: t.dims,
        data: t.dtype === "int64" ? BigInt64Array.from(t.data.map(BigInt)) : Float32Array.from(t.data),
      });
      const feeds = Object.fromEntries(Object.entries(io.inputs).map(([k, v]) => [k, toHost(v)]));
      const golden = Object.fromEntries(Object.entries(io.outputs).map(([k, v]) => [k, toHost(v)]));
      for (const stages of [3, 6]) {
        const out = join(dir, `b${stages}`);
        const s = await importModel(join(fixtures, `${name}.onnx`), out, { stages });
        assert.equal(s.manifest.stages.length, stages);
        assert.equal(
          s.manifest.model.name,
          name,
          "PyTorch's graph name 'torch_jit' gives way to the file stem",
        );
        await checkWeightsFile(out, s.manifest);
        assertSameOutputs(await runBundle(out, feeds), golden, 1e-5);
      }
    });
  }
});

test("stage graphs hold no weight bytes: weights are external references into their stage's range", async () => {
  await withTemp(async (dir) => {
    const model = await saveModel(dir, "residual.onnx", residualModel());
    const out = join(dir, "b");
    const s = await importModel(model, out, { stages: 3, name: "res" });
    assert.equal(s.manifest.model.name, "res");
    for (const stage of s.manifest.stages) {
      const graph = decodeModel(await readFile(join(out, stage.file))).graph!;
      for (const t of stage.tensors) {
        const init = graph.initializer!.find((i) => i.name === t.name)!;
        assert.equal(init.dataLocation, 1);
        assert.equal(init.rawData, undefined);
        const ext: Record<string, string | undefined> = Object.fromEntries(
          init.externalData!.map((e): [string, string | undefined] => [e.key ?? "", e.value]),
        );
        assert.deepEqual(ext, {
          location: stage.weights.location,
          offset: String(t.offset),
          length: String(t.length),
        });
        const bytes = await readBytes(join(out, WEIGHTS_FILE), stage.weights.offset + t.offset, t.length);
        assert.equal(bytes.length, t.length);
      }
      const inline = graph.initializer!.filter((i) => i.dataLocation !== 1);
      assert.ok(inline.every((i) => (i.rawData?.length ?? 0) + 4 * (i.floatData?.length ?? 0) < 1024));
    }
  });
});
