import { test } from "node:test";
import assert from "node:assert/strict";
import { isCicadaError } from "../../src/errors.js";
import type { GraphInput } from "../../src/format/manifest.js";
import { float16ToNumber } from "../../src/util/half-float.js";
import {
  MAX_INPUT_ELEMENTS,
  randomInputs,
  tensorsFromJson,
  validateInputs,
} from "../../src/runtime/model-inputs.js";

const specs: GraphInput[] = [
  {
    name: "input_ids",
    dtype: "int64",
    shape: ["batch", "sequence"],
    example: { shape: [1, 6], range: [0, 50] },
  },
  { name: "scale", dtype: "float32", shape: [1], example: { shape: [1], range: [0, 1] } },
];

test("random inputs follow the example shapes and ranges, and are reproducible", () => {
  const a = randomInputs(specs, 3);
  const ids = a.input_ids!;
  assert.deepEqual(ids.dims, [1, 6]);
  assert.ok(ids.data instanceof BigInt64Array);
  for (const v of ids.data) assert.ok(v >= 0n && v < 50n);
  assert.deepEqual(randomInputs(specs, 3), a);
  assert.notDeepEqual(randomInputs(specs, 4).input_ids!.data, ids.data);
  validateInputs(specs, a, "m");
});

test("inputs with a wrong name, dtype or shape are refused with the right code", () => {
  const good = randomInputs(specs, 0);
  const expectCode = (feeds: Parameters<typeof validateInputs>[1], code: string, pattern: RegExp) =>
    assert.throws(
      () => validateInputs(specs, feeds, "m"),
      (e) => isCicadaError(e) && e.code === code && pattern.test(e.message),
    );
  expectCode({ ...good, extra: good.scale! }, "E_INPUT_NAME", /no input 'extra'/);
  expectCode({ input_ids: good.input_ids! }, "E_INPUT_NAME", /'scale' is missing/);
  expectCode(
    { ...good, scale: { dtype: "float64", dims: [1], data: new Float64Array(1) } },
    "E_INPUT_DTYPE",
    /must be float32, found float64/,
  );
  expectCode(
    { ...good, scale: { dtype: "float32", dims: [2], data: new Float32Array(2) } },
    "E_INPUT_SHAPE",
    /\[1\], found \[2\]/,
  );
  expectCode(
    { ...good, scale: { dtype: "float32", dims: [1], data: new Float32Array(3) } },
    "E_INPUT_SHAPE",
    /3 values/,
  );
  // Symbolic dims accept any size, but not another rank.
  validateInputs(
    specs,
    { ...good, input_ids: { dtype: "int64", dims: [2, 9], data: new BigInt64Array(18) } },
    "m",
  );
  expectCode(
    { ...good, input_ids: { dtype: "int64", dims: [18], data: new BigInt64Array(18) } },
    "E_INPUT_SHAPE",
    /batch,sequence/,
  );
});

test("JSON tensors are converted and validated", () => {
  const t = tensorsFromJson({ x: { dtype: "int64", dims: [2], data: [4, 5] } }, "f.json");
  assert.deepEqual([...(t.x!.data as BigInt64Array)], [4n, 5n]);
  assert.throws(
    () => tensorsFromJson({ x: { dtype: "complex", dims: [1], data: [1] } }, "f.json"),
    (e) => isCicadaError(e, "E_INPUT_DTYPE") && /f\.json: field 'x'\.dtype/.test(e.message),
  );
});

test("an input of element type string is refused naming it (the runtime cannot pass one)", () => {
  const text: GraphInput = {
    name: "text",
    dtype: "string",
    shape: [1],
    example: { shape: [1], range: [0, 1] },
  };
  const isStringRefusal = (e: unknown) =>
    isCicadaError(e, "E_INPUT_DTYPE") && /m: input 'text' has element type string/.test(e.message);
  assert.throws(() => randomInputs([...specs, text], 0, "m"), isStringRefusal);
  assert.throws(() => validateInputs([...specs, text], randomInputs(specs, 0), "m"), isStringRefusal);
});

test("an example shape beyond the element limit is refused before anything is allocated", () => {
  const huge: GraphInput = {
    name: "pixels",
    dtype: "float32",
    shape: [100000, 100000],
    example: { shape: [100000, 100000], range: [0, 1] },
  };
  const before = process.memoryUsage().arrayBuffers;
  assert.throws(
    () => randomInputs([huge, ...specs], 0, "m"),
    (e) =>
      isCicadaError(e, "E_INPUT_LIMIT") &&
      e.message.includes("m: example of input 'pixels'") &&
      e.message.includes(
        `10,000,000,000 elements, more than the limit of ${MAX_INPUT_ELEMENTS.toLocaleString("en-US")}`,
      ),
  );
  assert.ok(process.memoryUsage().arrayBuffers - before < 1 << 20, "nothing was allocated");
  // Given inputs whose dims claim more than the limit are refused with the same code.
  assert.throws(
    () =>
      validateInputs(
        [{ name: "x", dtype: "float32", shape: null }],
        { x: { dtype: "float32", dims: [1 << 20, 1 << 20], data: new Float32Array(1) } },
        "m",
      ),
    (e) => isCicadaError(e, "E_INPUT_LIMIT") && /m: input 'x': shape \[1048576,1048576\]/.test(e.message),
  );
});

test("half-float example inputs hold encoded values within their range", () => {
  const h: GraphInput = { name: "h", dtype: "float16", shape: [4], example: { shape: [4], range: [2, 3] } };
  const x = randomInputs([h], 1).h!;
  assert.ok(x.data instanceof Uint16Array);
  for (const bits of x.data) {
    const v = float16ToNumber(bits);
    assert.ok(v >= 2 && v <= 3, `${v}`);
  }
});
