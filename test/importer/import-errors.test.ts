import { test } from "node:test";
import assert from "node:assert/strict";
import { existsSync } from "node:fs";
import { mkdir, mkdtemp, readdir, readFile, rm, truncate, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { isCicadaError, type ErrorCode } from "../../src/errors.js";
import { encodeModel } from "../../src/format/onnx-io.js";
import { DataType } from "../../src/format/onnx-types.js";
import { importModel, type ImportOptions } from "../../src/importer/import-model.js";
import { modelOf, node, residualModel, saveModel, vi, W, writeMlp } from "./tiny-models.js";

async function withTemp(fn: (dir: string) => Promise<void>): Promise<void> {
  const dir = await mkdtemp(join(tmpdir(), "cicada-import-err-"));
  try {
    await fn(dir);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

/** Imports into `<dir>/out`, expects `code` and a message matching `pattern`, and that nothing is left. */
async function expectFailure(
  dir: string,
  model: string,
  code: ErrorCode,
  pattern: RegExp,
  options: ImportOptions = {},
): Promise<void> {
  const out = join(dir, "out");
  await assert.rejects(importModel(model, out, options), (e) => {
    assert.ok(isCicadaError(e, code), `expected ${code}, got ${String(e)}`);
    assert.match(e.message, pattern);
    return true;
  });
  assert.equal(existsSync(out), false, "no bundle directory");
  assert.deepEqual(
    (await readdir(dir)).filter((f) => f.startsWith(".out")),
    [],
    "no temporary directory",
  );
}

test("files that are not (complete) ONNX models are E_ONNX_PARSE", async () => {
  await withTemp(async (dir) => {
    const text = join(dir, "notes.onnx");
    await writeFile(text, "this is not a model\n".repeat(20));
    await expectFailure(dir, text, "E_ONNX_PARSE", /notes\.onnx/);
    const model = await saveModel(dir, "cut.onnx", residualModel());
    const size = (await readFile(model)).length;
    await truncate(model, Math.floor(size / 2));
    await expectFailure(dir, model, "E_ONNX_PARSE", /cut\.onnx/);
    await expectFailure(dir, join(dir, "absent.onnx"), "E_ONNX_PARSE", /absent\.onnx/);
  });
});

test("a missing or short external-data file is E_ONNX_EXTERNAL_DATA naming the tensor and file", async () => {
  await withTemp(async (dir) => {
    const model = await writeMlp(dir, 3, 32);
    const data = join(dir, "mlp", "model.onnx.data");
    await truncate(data, 4096 + 100);
    await expectFailure(dir, model, "E_ONNX_EXTERNAL_DATA", /'fc\d\.weight'.*model\.onnx\.data/);
    await rm(data);
    await expectFailure(dir, model, "E_ONNX_EXTERNAL_DATA", /'fc0\.weight'.*model\.onnx\.data/);
  });
});

test("stage counts out of range are E_USAGE with the possible maximum", async () => {
  await withTemp(async (dir) => {
    const model = await writeMlp(dir, 2, 32);
    // 2 layers of MatMul, Add, Relu: 6 nodes can be cut into at most 6 stages.
    await expectFailure(
      dir,
      model,
      "E_USAGE",
      /--stages 500 is out of range: mlp can be cut into at most 6 stages/,
      {
        stages: 500,
      },
    );
    await expectFailure(dir, model, "E_USAGE", /--stages 0 is out of range/, { stages: 0 });
    await expectFailure(dir, model, "E_USAGE", /not both/, { stages: 2, maxStageBytes: 1 << 20 });
    const out = join(dir, "six");
    assert.equal((await importModel(model, out, { stages: 6 })).manifest.stages.length, 6);
  });
});

test("an existing output directory is refused before any work and left untouched", async () => {
  await withTemp(async (dir) => {
    const model = await saveModel(dir, "m.onnx", residualModel());
    const out = join(dir, "out");
    await mkdir(out);
    await writeFile(join(out, "keep.txt"), "mine");
    await assert.rejects(importModel(model, out), (e) => isCicadaError(e, "E_OUTPUT_EXISTS"));
    assert.deepEqual(await readdir(out), ["keep.txt"]);
  });
});

test("cycles and undefined inputs are E_ONNX_PARSE naming the node and tensor", async () => {
  await withTemp(async (dir) => {
    const io = { input: [vi("x", DataType.FLOAT, [1, W])], output: [vi("y", DataType.FLOAT, [1, W])] };
    const cyclic = modelOf({
      name: "cyclic",
      node: [node("Add", ["x", "b"], ["a"]), node("Relu", ["a"], ["b"]), node("Relu", ["b"], ["y"])],
      ...io,
    });
    await expectFailure(
      dir,
      await saveModel(dir, "cyclic.onnx", cyclic),
      "E_ONNX_PARSE",
      /cycle: node '[ab]' \(\w+\) produces '[ab]'/,
    );
    const dangling = modelOf({ name: "dangling", node: [node("Add", ["x", "nowhere"], ["y"])], ...io });
    await expectFailure(
      dir,
      await saveModel(dir, "dangling.onnx", dangling),
      "E_ONNX_PARSE",
      /node 'y' \(Add\) reads tensor 'nowhere'/,
    );
  });
});

test("unsupported features are E_ONNX_UNSUPPORTED naming what is wrong", async () => {
  await withTemp(async (dir) => {
    const io = { input: [vi("x", DataType.FLOAT, [1, W])], output: [vi("y", DataType.FLOAT, [1, W])] };
    const untyped = modelOf({
      name: "untyped",
      node: [
        { name: "src", opType: "Source", domain: "example.custom", input: [], output: ["r"] },
        node("Add", ["x", "r"], ["y"]),
      ],
      ...io,
    });
    await expectFailure(
      dir,
      await saveModel(dir, "untyped.onnx", untyped),
      "E_ONNX_UNSUPPORTED",
      /tensor 'r' \(written by node 'src' \(Source\)\)/,
      {
        stages: 2,
      },
    );
    const sparse = modelOf({ name: "sparse", node: [node("Relu", ["x"], ["y"])], ...io });
    sparse.graph!.sparseInitializer = [
      {
        values: { dims: [1], dataType: DataType.FLOAT, floatData: [1] },
        indices: { dims: [1], dataType: DataType.INT64, int64Data: [0] },
        dims: [4],
      },
    ];
    const path = join(dir, "sparse.onnx");
    await writeFile(path, encodeModel(sparse));
    await expectFailure(dir, path, "E_ONNX_UNSUPPORTED", /sparse initializer/);
    const training = modelOf({ name: "training", node: [node("Relu", ["x"], ["y"])], ...io });
    training.trainingInfo = [{ initializationBinding: [{ key: "a", value: "b" }] }];
    const trainingPath = join(dir, "training.onnx");
    await writeFile(trainingPath, encodeModel(training));
    await expectFailure(dir, trainingPath, "E_ONNX_UNSUPPORTED", /training_info/);
  });
});
