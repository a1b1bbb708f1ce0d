// Tensors as JSON both ways (run --inputs / --outputs): exact round trips (non-finite floats as strings,
// 64-bit integers beyond 2^53 as strings, half floats by value), and every value or shape that would be
// silently changed refused with a code naming the field.
import { test } from "node:test";
import assert from "node:assert/strict";
import { isCicadaError, type ErrorCode } from "../../src/errors.js";
import {
  bfloat16ToNumber,
  float16ToNumber,
  numberToBfloat16,
  numberToFloat16,
} from "../../src/util/half-float.js";
import type { HostTensor } from "../../src/runtime/host-tensor.js";
import { MAX_INPUT_ELEMENTS, tensorsFromJson, tensorsToJson } from "../../src/runtime/tensor-json.js";
import { SeededRandom } from "../../src/util/seeded-random.js";

const refused = (json: unknown, code: ErrorCode, pattern: RegExp) =>
  assert.throws(
    () => tensorsFromJson(json, "f.json"),
    (e) => isCicadaError(e, code) && pattern.test(e.message),
    `expected ${code} ${pattern}`,
  );

test("every element type round-trips exactly through the JSON text", () => {
  const rng = new SeededRandom(13, "tensor-json");
  const n = 64;
  const f32 = new Float32Array(n).map(() => (rng.next() - 0.5) * 10 ** Math.floor(rng.next() * 60 - 30));
  f32.set([NaN, Infinity, -Infinity, -0, 3.4028234663852886e38, 1e-45], 0);
  const f64 = new Float64Array(n).map(() => (rng.next() - 0.5) * 1e300);
  f64.set([NaN, -Infinity, Number.MIN_VALUE, -0], 0);
  const tensors: Record<string, HostTensor> = {
    f32: { dtype: "float32", dims: [4, 16], data: f32 },
    f64: { dtype: "float64", dims: [n], data: f64 },
    f16: {
      dtype: "float16",
      dims: [6],
      data: Uint16Array.from([0x7c00, 0xfc00, 0x7e00, 0x0001, 0x3c00, 0xfbff]),
    },
    bf16: { dtype: "bfloat16", dims: [4], data: Uint16Array.from([0x7f80, 0x7fc0, 0x3f80, 0x0001]) },
    i64: {
      dtype: "int64",
      dims: [4],
      data: BigInt64Array.from([-(2n ** 63n), 2n ** 63n - 1n, 2n ** 53n + 1n, -7n]),
    },
    u64: { dtype: "uint64", dims: [2], data: BigUint64Array.from([2n ** 64n - 1n, 0n]) },
    i32: { dtype: "int32", dims: [2], data: Int32Array.from([-(2 ** 31), 2 ** 31 - 1]) },
    u8: { dtype: "uint8", dims: [2], data: Uint8Array.from([0, 255]) },
    bool: { dtype: "bool", dims: [3], data: Uint8Array.from([1, 0, 1]) },
    empty: { dtype: "float32", dims: [0, 3], data: new Float32Array(0) },
  };
  const text = tensorsToJson(tensors);
  assert.match(text, /"NaN", "Infinity", "-Infinity", -0,/);
  assert.match(text, /"-9223372036854775808", "9223372036854775807", "9007199254740993"/);
  assert.match(text, /"data": \[true, false, true\]/);
  const back = tensorsFromJson(JSON.parse(text), "out.json");
  assert.deepEqual(Object.keys(back), Object.keys(tensors));
  for (const [name, t] of Object.entries(tensors)) {
    const b = back[name]!;
    assert.equal(b.dtype, t.dtype, name);
    assert.deepEqual(b.dims, t.dims, name);
    assert.equal(b.data.constructor, t.data.constructor, name);
    // Bit for bit (Object.is: -0 and NaN included).
    for (let i = 0; i < t.data.length; i++) assert.ok(Object.is(b.data[i], t.data[i]), `${name}[${i}]`);
  }
});

test("half floats encode with ties to even and decode to their values", () => {
  assert.equal(numberToFloat16(1), 0x3c00);
  assert.equal(numberToFloat16(65504), 0x7bff);
  assert.equal(numberToFloat16(65520), 0x7c00, "the tie above the largest finite rounds to infinity");
  assert.equal(numberToFloat16(1 + 2 ** -11), 0x3c00, "a tie rounds to the even mantissa");
  assert.equal(numberToFloat16(1 + 3 * 2 ** -11), 0x3c02);
  assert.equal(numberToFloat16(2 ** -24), 0x0001);
  assert.equal(numberToFloat16(2 ** -25), 0x0000, "the tie to the smallest subnormal rounds to zero");
  assert.equal(numberToFloat16(-0), 0x8000);
  for (let bits = 0; bits < 0x10000; bits++) {
    const v = float16ToNumber(bits);
    if (!Number.isNaN(v)) assert.equal(numberToFloat16(v), bits, `float16 ${bits.toString(16)}`);
    const w = bfloat16ToNumber(bits);
    if (!Number.isNaN(w)) assert.equal(numberToBfloat16(w), bits, `bfloat16 ${bits.toString(16)}`);
  }
  assert.ok(Number.isNaN(float16ToNumber(numberToFloat16(NaN))));
  assert.ok(Number.isNaN(bfloat16ToNumber(numberToBfloat16(NaN))));
});

test("numbers that would change are refused naming the field: overflow, range, precision, fraction", () => {
  const t = (dtype: string, data: unknown[]) => ({ x: { dtype, dims: [data.length], data } });
  // JSON.parse turns 1e400 into Infinity: that is an overflow, not an infinity.
  refused(
    JSON.parse('{"x":{"dtype":"float32","dims":[2],"data":[1,1e400]}}'),
    "E_INPUT_DTYPE",
    /f\.json: field 'x'\.data\[1\]: expected a finite number or "NaN".*1e400/,
  );
  refused(
    t("float32", [1e39]),
    "E_INPUT_DTYPE",
    /'x'\.data\[0\]: expected a number within the range of float32, found 1e\+39/,
  );
  refused(t("float16", [70000]), "E_INPUT_DTYPE", /range of float16/);
  refused(t("float32", ["nan"]), "E_INPUT_DTYPE", /found "nan"/);
  refused(t("float32", [null]), "E_INPUT_DTYPE", /found null/);
  refused(t("int64", [2 ** 53 + 2]), "E_INPUT_DTYPE", /within ±2\^53 as a JSON number, or a decimal string/);
  refused(
    t("int64", ["9223372036854775808"]),
    "E_INPUT_DTYPE",
    /from -9223372036854775808 to 9223372036854775807/,
  );
  refused(t("uint64", [-1]), "E_INPUT_DTYPE", /from 0 to/);
  refused(t("int32", [1.5]), "E_INPUT_DTYPE", /an integer from -2147483648/);
  refused(t("uint8", [256]), "E_INPUT_DTYPE", /from 0 to 255 \(uint8\)/);
  refused(t("bool", [2]), "E_INPUT_DTYPE", /true, false, 0 or 1/);
  refused(t("string", ["a"]), "E_INPUT_DTYPE", /'x'\.dtype: string tensors are not supported/);
  refused(t("complex", [1]), "E_INPUT_DTYPE", /'x'\.dtype: expected one of float32/);
  // Read as given: numbers for int64 within 2^53, "Infinity" strings, 0/1 for bool.
  const ok = tensorsFromJson(
    {
      a: { dtype: "int64", dims: [2], data: [4, "-5"] },
      b: { dtype: "float64", dims: [1], data: ["-Infinity"] },
    },
    "f.json",
  );
  assert.deepEqual([...(ok.a!.data as BigInt64Array)], [4n, -5n]);
  assert.equal(ok.b!.data[0], -Infinity);
});

test("data follows dims exactly: flat with the right count, or nested level by level", () => {
  const nested = tensorsFromJson(
    {
      x: {
        dtype: "float32",
        dims: [2, 3],
        data: [
          [1, 2, 3],
          [4, 5, 6],
        ],
      },
    },
    "f.json",
  );
  assert.deepEqual([...nested.x!.data], [1, 2, 3, 4, 5, 6]);
  const flat = tensorsFromJson({ x: { dtype: "float32", dims: [2, 3], data: [1, 2, 3, 4, 5, 6] } }, "f.json");
  assert.deepEqual([...flat.x!.data], [1, 2, 3, 4, 5, 6]);
  // The right count in the wrong shape.
  refused(
    {
      x: {
        dtype: "float32",
        dims: [2, 3],
        data: [
          [1, 2],
          [3, 4],
          [5, 6],
        ],
      },
    },
    "E_INPUT_SHAPE",
    /'x'\.data: nested data must follow the shape \[2,3\]: found 3 entries/,
  );
  refused(
    {
      x: {
        dtype: "float32",
        dims: [2, 3],
        data: [
          [1, 2, 3, 4],
          [5, 6],
        ],
      },
    },
    "E_INPUT_SHAPE",
    /'x'\.data\[0\]: .*expected an array of 3, found an array of 4/,
  );
  refused(
    {
      x: {
        dtype: "float32",
        dims: [2, 3],
        data: [
          [1, 2, [3]],
          [4, 5, 6],
        ],
      },
    },
    "E_INPUT_SHAPE",
    /'x'\.data\[0\]\[2\]: expected a value/,
  );
  refused(
    { x: { dtype: "float32", dims: [2, 3], data: [1, 2, 3] } },
    "E_INPUT_SHAPE",
    /needs 6 values, found 3/,
  );
  // Deep nesting is walked without recursion and refused at the first level that does not fit.
  let deep: unknown = [1];
  for (let i = 0; i < 100_000; i++) deep = [deep];
  refused(
    { x: { dtype: "float32", dims: [1, 1], data: deep } },
    "E_INPUT_SHAPE",
    /'x'\.data\[0\]\[0\]: expected a value/,
  );
});

test("shapes beyond the element limit are refused before allocation, naming the count and the limit", () => {
  refused(
    { x: { dtype: "float32", dims: [100000, 100000], data: [] } },
    "E_INPUT_LIMIT",
    new RegExp(
      `'x': shape \\[100000,100000\\] has 10,000,000,000 elements, more than the limit of ${MAX_INPUT_ELEMENTS.toLocaleString("en-US")}`,
    ),
  );
  refused({ x: { dtype: "float32", dims: new Array(40).fill(1), data: [1] } }, "E_INPUT_SHAPE", /at most 32/);
  refused({ x: { dtype: "float32", dims: [-1], data: [] } }, "E_INPUT_SHAPE", /'x'\.dims/);
  refused([1, 2], "E_USAGE", /expected an object of tensors/);
});
