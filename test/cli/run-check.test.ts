// `cicada run --check` and `--outputs` on a real model whose outputs hold NaN (Sqrt of negative values):
// NaN where eager's outputs hold NaN passes, NaN elsewhere fails naming the tensor and the count; the
// outputs file carries NaN as a string and reads back as inputs; inputs the runtime cannot take (string
// tensors, example shapes past the element limit, overflowing numbers, nested data of the wrong shape) are
// refused with a code, never an internal error.
import { test } from "node:test";
import assert from "node:assert/strict";
import { mkdtemp, readdir, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { DataType } from "../../src/format/onnx-types.js";
import { importModel } from "../../src/importer/import-model.js";
import { floatTensor, modelOf, node, saveModel, values, vi, W } from "../importer/tiny-models.js";
import { cicada, json } from "../support/cli.js";

const root = await mkdtemp(join(tmpdir(), "cicada-run-check-"));
test.after(() => rm(root, { recursive: true, force: true }));

/** y = Sqrt(x · W) (NaN where x · W < 0), or with `abs` y = Sqrt(|x · W|) (never NaN). */
function sqrtModel(abs: boolean) {
  const nodes = [node("MatMul", ["x", "W"], ["h"])];
  if (abs) nodes.push(node("Abs", ["h"], ["a"]));
  nodes.push(node("Sqrt", [abs ? "a" : "h"], ["y"]));
  return modelOf({
    name: "sqrt",
    input: [vi("x", DataType.FLOAT, [1, W])],
    output: [vi("y", DataType.FLOAT, [1, W])],
    initializer: [floatTensor("W", [W, W], values(W * W, 5))],
    node: nodes,
  });
}

const modelPath = await saveModel(root, "sqrt.onnx", sqrtModel(false));
const absPath = await saveModel(root, "sqrt-abs.onnx", sqrtModel(true));
const bundle = join(root, "sqrt.bundle");
await importModel(modelPath, bundle, { stages: 1 });
const inputs = join(root, "inputs.json");
await writeFile(
  inputs,
  JSON.stringify({ x: { dtype: "float32", dims: [1, W], data: [...values(W, 9, 1)] } }),
);

interface CheckJson {
  outputsFile: string;
  check: {
    passed: boolean;
    outputs: { name: string; nonFiniteMatches: number; nonFiniteMismatches: number }[];
  };
}

test('--check passes a run whose NaN are where eager\'s are; --outputs writes them as "NaN"', async () => {
  const out = join(root, "outputs.json");
  const r = await cicada(
    ["run", bundle, "--strategy", "cicada", "--inputs", inputs, "--check", "--outputs", out, "--json"],
    { CICADA_CACHE: join(root, "cache") },
  );
  assert.equal(r.code, 0, r.stderr);
  const run = json<CheckJson>(r);
  assert.ok(run.check.passed);
  assert.equal(run.outputsFile, out);
  const y = run.check.outputs[0]!;
  assert.ok(y.nonFiniteMatches > 0 && y.nonFiniteMatches < W, `${y.nonFiniteMatches} NaN of ${W}`);
  assert.equal(y.nonFiniteMismatches, 0);
  const written = JSON.parse(await readFile(out, "utf8")) as {
    y: { dtype: string; dims: number[]; data: (number | string)[] };
  };
  assert.deepEqual([written.y.dtype, written.y.dims], ["float32", [1, W]]);
  assert.equal(written.y.data.filter((v) => v === "NaN").length, y.nonFiniteMatches);
  assert.ok(written.y.data.every((v) => v === "NaN" || (typeof v === "number" && v >= 0)));
  assert.deepEqual(
    (await readdir(root)).filter((f) => f.includes(".tmp-")),
    [],
    "no staging left",
  );
  // The outputs file is in the inputs format: it reads back (NaN included) as inputs of a model.
  await writeFile(join(root, "x.json"), (await readFile(out, "utf8")).replace('"y"', '"x"'));
  const fed = await cicada(["run", absPath, "--strategy", "eager", "--inputs", join(root, "x.json")]);
  assert.equal(fed.code, 0, fed.stderr);
});

test("--check fails a run with NaN where eager has none, naming the output and the count", async () => {
  // The same model checked against Sqrt(|x · W|): the run's NaN are mismatches, its other values agree.
  const r = await cicada([
    "run",
    bundle,
    "--strategy",
    "sequential",
    "--inputs",
    inputs,
    "--check",
    "--reference",
    absPath,
  ]);
  assert.equal(r.code, 1, r.stderr);
  const count = Number(/output 'y': (\d+) non-finite positions? differ/.exec(r.stderr)?.[1]);
  assert.ok(count > 0 && count < W, r.stderr);
  assert.match(r.stderr, /cicada: E_RUNTIME: run --check: sequential differs from eager/);
  assert.match(
    r.stdout,
    new RegExp(`check y vs eager: cosine 1\\.0000000, .*${count} non-finite positions? differ`),
  );
});

test("inputs the runtime cannot take are refused with a code naming the input", async () => {
  const expectError = async (args: string[], code: string, pattern: RegExp) => {
    const r = await cicada(args);
    assert.equal(r.code, 1, `${args.join(" ")}: exit ${r.code}\n${r.stderr}`);
    assert.match(r.stderr, new RegExp(`cicada: ${code}: `));
    assert.match(r.stderr, pattern);
    assert.doesNotMatch(r.stderr, /internal error/);
  };
  // A string input: nothing in the runtime can pass it to onnxruntime.
  const text = await saveModel(
    root,
    "text.onnx",
    modelOf({
      name: "text",
      input: [vi("s", DataType.STRING, [1])],
      output: [vi("t", DataType.STRING, [1])],
      node: [node("Identity", ["s"], ["t"])],
    }),
  );
  await expectError(
    ["run", text, "--strategy", "eager"],
    "E_INPUT_DTYPE",
    /input 's' has element type string/,
  );
  // An example shape of 1e5 x 1e5 from the model's metadata: refused before allocating 40 GB.
  const huge = await saveModel(
    root,
    "huge.onnx",
    modelOf(
      {
        name: "huge",
        input: [vi("x", DataType.FLOAT, ["a", "b"])],
        output: [vi("y", DataType.FLOAT, ["a", "b"])],
        node: [node("Identity", ["x"], ["y"])],
      },
      { "cicada.example.x.shape": "100000,100000" },
    ),
  );
  await expectError(
    ["run", huge, "--strategy", "eager"],
    "E_INPUT_LIMIT",
    /example of input 'x': shape \[100000,100000\] has 10,000,000,000 elements, more than the limit of 268,435,456; give smaller inputs with --inputs/,
  );
  // 1e400 is not a float32 (JSON has no Infinity; it parses as one).
  const overflow = join(root, "overflow.json");
  await writeFile(overflow, `{"x": {"dtype": "float32", "dims": [1, 2], "data": [1, 1e400]}}`);
  await expectError(
    ["run", huge, "--strategy", "eager", "--inputs", overflow],
    "E_INPUT_DTYPE",
    /'x'\.data\[1\]: .*1e400/,
  );
  // The right count in the wrong shape.
  const nested = join(root, "nested.json");
  await writeFile(
    nested,
    JSON.stringify({
      x: {
        dtype: "float32",
        dims: [2, 3],
        data: [
          [1, 2],
          [3, 4],
          [5, 6],
        ],
      },
    }),
  );
  await expectError(
    ["run", huge, "--strategy", "eager", "--inputs", nested],
    "E_INPUT_SHAPE",
    /nested data must follow the shape \[2,3\]/,
  );
});
