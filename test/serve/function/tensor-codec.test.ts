// The tensor codec without a model or a socket: JSON tensors (flat and nested), the binary tensor data
// extension in both directions, and every malformed request refused with the field it names.
import { test } from "node:test";
import assert from "node:assert/strict";
import { isCicadaError, type ErrorCode } from "../../../src/errors.js";
import type { TensorSpec } from "../../../src/format/manifest.js";
import { validateInputs } from "../../../src/runtime/model-inputs.js";
import {
  decodeInferRequest,
  encodeOutputs,
  inferRequestBody,
  inferResponseBody,
} from "../../../src/serve/function/tensor-codec.js";

const model = {
  name: "m",
  inputs: [
    { name: "x", dtype: "float32", shape: [1, 2, 2] },
    { name: "ids", dtype: "int64", shape: [1, "sequence"] },
  ] satisfies TensorSpec[],
  outputs: [
    { name: "y", dtype: "float32", shape: [1, 2] },
    { name: "mask", dtype: "bool", shape: [2] },
    { name: "half", dtype: "float16", shape: [2] },
  ] satisfies TensorSpec[],
};

const json = (v: unknown) => Buffer.from(JSON.stringify(v));
const x = { name: "x", shape: [1, 2, 2], datatype: "FP32", data: [1, 2, 3, 4] };
const ids = { name: "ids", shape: [1, 3], datatype: "INT64", data: [5, 6, 7] };

function refuses(
  body: Uint8Array,
  code: ErrorCode,
  pattern: RegExp,
  headerLength: string | null = null,
  decodes = false,
) {
  if (decodes) {
    // Decoded fine: the refusal comes from the runtime's check of the feeds (validateInputs).
    const d = decodeInferRequest(body, headerLength, model);
    assert.throws(
      () => validateInputs(model.inputs, d.feeds, `model ${model.name}`),
      (e) => isCicadaError(e, code) && pattern.test(e.message),
    );
    return;
  }
  assert.throws(
    () => decodeInferRequest(body, headerLength, model),
    (e) => isCicadaError(e, code) && pattern.test(e.message),
  );
}

test("JSON tensors, flat or nested, become typed arrays of the declared type", () => {
  const nested = {
    ...x,
    data: [
      [
        [1, 2],
        [3, 4],
      ],
    ],
  };
  const d = decodeInferRequest(json({ id: "a", inputs: [nested, ids] }), null, model);
  assert.equal(d.id, "a");
  assert.deepEqual(d.feeds.x, { dtype: "float32", dims: [1, 2, 2], data: new Float32Array([1, 2, 3, 4]) });
  assert.deepEqual(d.feeds.ids!.data, new BigInt64Array([5n, 6n, 7n]));
  // No outputs named: all of them, as JSON, except FP16 which has no JSON form.
  assert.deepEqual(d.outputs, [
    { name: "y", binary: false },
    { name: "mask", binary: false },
    { name: "half", binary: true },
  ]);
});

test("binary inputs follow the JSON header; binary_data asks for binary outputs", () => {
  const bytes = new Float32Array([0.5, -1, 2, 8]);
  const header = json({
    inputs: [{ name: "x", shape: [1, 2, 2], datatype: "FP32", parameters: { binary_data_size: 16 } }, ids],
    outputs: [{ name: "y", parameters: { binary_data: true } }, { name: "mask" }],
  });
  const body = Buffer.concat([header, Buffer.from(bytes.buffer)]);
  const d = decodeInferRequest(body, String(header.length), model);
  assert.deepEqual(d.feeds.x!.data, bytes);
  assert.deepEqual(d.outputs, [
    { name: "y", binary: true },
    { name: "mask", binary: false },
  ]);
  refuses(
    Buffer.concat([body, Buffer.alloc(4)]),
    "E_REQUEST",
    /20 bytes after the JSON header.*add up to 16/,
    String(header.length),
  );
  refuses(
    body.subarray(0, body.length - 1),
    "E_REQUEST",
    /ends at byte 16 .* the body has 15/,
    String(header.length),
  );
  refuses(body, "E_REQUEST", /Inference-Header-Content-Length must be an integer/, "12x");
});

test("malformed requests are refused naming the field, expected and found", () => {
  refuses(Buffer.from(""), "E_REQUEST", /empty/);
  refuses(Buffer.from("{"), "E_REQUEST", /not valid JSON/);
  refuses(json({ inputs: [] }), "E_REQUEST", /field 'inputs'/);
  refuses(json({ inputs: [{ ...x, shape: [1, -2] }] }), "E_REQUEST", /field 'inputs\.0\.shape\.1'/);
  refuses(
    json({ inputs: [{ ...x, datatype: "FP33" }] }),
    "E_REQUEST",
    /'FP33' is not a protocol datatype \(BOOL, /,
  );
  refuses(
    json({ inputs: [{ ...x, datatype: "FP64" }] }),
    "E_INPUT_DTYPE",
    /input 'x' must be FP32, found FP64/,
  );
  refuses(json({ inputs: [{ ...x, data: [1, 2, 3] }] }), "E_INPUT_SHAPE", /\(4 values\) but 3 values/);
  refuses(json({ inputs: [{ ...x, data: 7 }] }), "E_REQUEST", /'inputs\.0\.data': expected an array/);
  refuses(
    json({ inputs: [{ ...x, data: [1, "2", 3, 4] }] }),
    "E_REQUEST",
    /'inputs\.0\.data\[1\]': expected a number, found "2"/,
  );
  refuses(json({ inputs: [{ ...ids, data: [1, 2.5, 3] }] }), "E_REQUEST", /INT64 integer .* found 2\.5/);
  refuses(json({ inputs: [{ ...ids, data: [1, 2 ** 60, 3] }] }), "E_REQUEST", /INT64 integer from/);
  refuses(
    json({ inputs: [{ name: "h", shape: [1], datatype: "FP16", data: [1] }] }),
    "E_REQUEST",
    /FP16 has no JSON form/,
  );
  refuses(json({ inputs: [x, x] }), "E_REQUEST", /input 'x' is given twice/);
  refuses(json({ inputs: [{ ...x, data: undefined }] }), "E_REQUEST", /input 'x' has no data/);
  refuses(
    json({ inputs: [{ ...x, parameters: { binary_data_size: 15 } }] }),
    "E_REQUEST",
    /shape \[1,2,2\] of FP32 needs 16 bytes, found 15/,
  );
  refuses(
    json({ inputs: [x], outputs: [{ name: "z" }] }),
    "E_REQUEST",
    /model m has no output 'z' \(outputs: y, mask, half\)/,
  );
  refuses(
    json({ inputs: [x], parameters: { binary_data_output: "yes" } }),
    "E_REQUEST",
    /binary_data_output': expected true or false/,
  );
  refuses(json({ inputs: [x], parameters: { nested: { a: 1 } } }), "E_REQUEST", /field 'parameters\.nested'/);
});

test("outputs encode as JSON values or raw bytes after the JSON header", () => {
  const outputs = {
    y: { dtype: "float32" as const, dims: [1, 2], data: new Float32Array([0.25, -3]) },
    mask: { dtype: "bool" as const, dims: [2], data: new Uint8Array([1, 0]) },
  };
  const asJson = encodeOutputs(
    [
      { name: "y", binary: false },
      { name: "mask", binary: false },
    ],
    outputs,
  );
  const plain = inferResponseBody({ model_name: "m", parameters: { a: 1 } }, asJson);
  assert.equal(plain.headerLength, undefined);
  assert.deepEqual(JSON.parse(Buffer.from(plain.body).toString()), {
    model_name: "m",
    parameters: { a: 1 },
    outputs: [
      { name: "y", datatype: "FP32", shape: [1, 2], data: [0.25, -3] },
      { name: "mask", datatype: "BOOL", shape: [2], data: [true, false] },
    ],
  });
  const asBinary = encodeOutputs([{ name: "y", binary: true }], outputs);
  const { body, headerLength } = inferResponseBody({ model_name: "m" }, asBinary);
  const head = JSON.parse(Buffer.from(body.subarray(0, headerLength)).toString()) as {
    outputs: { parameters: { binary_data_size: number } }[];
  };
  assert.equal(head.outputs[0]!.parameters.binary_data_size, 8);
  assert.deepEqual(new Float32Array(new Uint8Array(body.subarray(headerLength)).buffer), outputs.y.data);
  assert.throws(
    () => encodeOutputs([{ name: "q", binary: false }], outputs),
    (e) => isCicadaError(e, "E_OUTPUT_MISSING"),
  );
});

test("nested data must nest exactly as the shape: wrong shape, ragged, deeper or mixed are refused", () => {
  // [1,2,2] with the right count (4 values) but nested as [2,2] or [1,4]
  refuses(
    json({
      inputs: [
        {
          ...x,
          data: [
            [1, 2],
            [3, 4],
          ],
        },
      ],
    }),
    "E_REQUEST",
    /field 'inputs\.0\.data': .*needs 1 entries \(dimension 0\), found 2/,
  );
  refuses(
    json({ inputs: [{ ...x, data: [[1, 2, 3, 4]] }] }),
    "E_REQUEST",
    /field 'inputs\.0\.data\[0\]': .*needs 2 entries \(dimension 1\), found 4/,
  );
  refuses(
    json({ inputs: [{ ...x, data: [[[1, 2], [3]]] }] }),
    "E_REQUEST",
    /field 'inputs\.0\.data\[0\]\[1\]': .*needs 2 entries \(dimension 2\), found 1/,
  );
  refuses(
    json({
      inputs: [
        {
          ...x,
          data: [
            [
              [1, 2],
              [3, [4]],
            ],
          ],
        },
      ],
    }),
    "E_REQUEST",
    /field 'inputs\.0\.data\[0\]\[1\]\[1\]': input 'x' has shape \[1,2,2\], but its nested data nests deeper/,
  );
  refuses(
    json({ inputs: [{ ...x, data: [[[1, 2], 3]] }] }),
    "E_REQUEST",
    /field 'inputs\.0\.data\[0\]\[1\]': .*does not match it/,
  );
  refuses(json({ inputs: [{ ...x, data: [1, [2], 3, 4] }] }), "E_REQUEST", /inputs\.0\.data/);
  const scalar = { name: "x", shape: [], datatype: "FP32" };
  refuses(json({ inputs: [{ ...scalar, data: [[1]] }] }), "E_REQUEST", /nests deeper/);
});

test("data nested 10,000 deep (or any JSON past 64 levels) is refused naming the field, without recursion", () => {
  const deep = `{"inputs":[{"name":"x","shape":[1,2,2],"datatype":"FP32","data":${"[".repeat(10_000)}1${"]".repeat(10_000)}}]}`;
  refuses(
    Buffer.from(deep),
    "E_REQUEST",
    /inference request: field 'inputs\.0\.data' nests deeper than 64 levels/,
  );
  const deepParams = `{"inputs":[],"parameters":{"a":${'{"b":'.repeat(100_000)}1${"}".repeat(100_000)}}}`;
  refuses(Buffer.from(deepParams), "E_REQUEST", /field 'parameters\.a\.b\.b.*' nests deeper than 64/);
  // Brackets inside strings do not count; an escaped quote does not end a string.
  const strings = `{"inputs":[{"name":"x\\"[[[[","shape":[1,2,2],"datatype":"FP32","data":[1,2,3,4]}],"id":"${"[".repeat(200)}"}`;
  refuses(Buffer.from(strings), "E_INPUT_NAME", /no input/, null, true);
});

test("non-finite numbers: 1e400 is refused, the strings NaN/Infinity/-Infinity are floats; outputs write them", () => {
  const text = (data: string) =>
    Buffer.from(`{"inputs":[{"name":"x","shape":[1,2,2],"datatype":"FP32","data":${data}}]}`);
  refuses(
    text("[1, 1e400, 3, 4]"),
    "E_REQUEST",
    /field 'inputs\.0\.data\[1\]': expected a finite FP32 number/,
  );
  refuses(text("[1, 2, -1e39, 4]"), "E_REQUEST", /'inputs\.0\.data\[2\]': .*FP32.*reads as -Infinity/);
  refuses(text('[1, 2, 3, "nan"]'), "E_REQUEST", /'inputs\.0\.data\[3\]': expected a number, found "nan"/);
  const d = decodeInferRequest(text('[[["NaN", "Infinity"], ["-Infinity", 3.4e38]]]'), null, model);
  const got = Array.from(d.feeds.x!.data as Float32Array);
  assert.ok(Number.isNaN(got[0]));
  assert.deepEqual(got.slice(1, 3), [Infinity, -Infinity]);
  assert.equal(got[3], Math.fround(3.4e38));
  refuses(
    json({ inputs: [{ ...ids, data: [1, "NaN", 3] }] }),
    "E_REQUEST",
    /'inputs\.0\.data\[1\]': expected a INT64 integer .* found "NaN"/,
  );
  const out = encodeOutputs([{ name: "y", binary: false }], {
    y: { dtype: "float32", dims: [1, 4], data: new Float32Array([NaN, Infinity, -Infinity, 0.5]) },
  });
  assert.equal(
    out.parts[0],
    '{"name":"y","datatype":"FP32","shape":[1,4],"data":["NaN","Infinity","-Infinity",0.5]}',
  );
  const body = inferRequestBody({ x: { dtype: "float64", dims: [2], data: new Float64Array([NaN, 1]) } });
  assert.match(body.body.toString(), /"data":\["NaN",1\]/);
});

test("shapes are bounded before anything is allocated from them", () => {
  refuses(
    json({ inputs: [{ ...x, shape: new Array(33).fill(1) }] }),
    "E_INPUT_LIMIT",
    /field 'inputs\.0\.shape': 33 dimensions, more than the server's limit of 32/,
  );
  refuses(
    json({ inputs: [{ ...x, shape: [1, 2 ** 29] }] }),
    "E_INPUT_LIMIT",
    /field 'inputs\.0\.shape\.1': dimension 536870912 is larger than/,
  );
  refuses(
    json({ inputs: [{ ...x, shape: [2 ** 20, 2 ** 20] }] }),
    "E_INPUT_LIMIT",
    /shape \[1048576,1048576\] has 1099511627776 elements, more than the server's limit of 268435456/,
  );
  refuses(json({ inputs: [{ ...x, shape: [1e300] }] }), "E_REQUEST", /field 'inputs\.0\.shape\.0'/);
  refuses(json({ inputs: [{ ...x, shape: [1.5] }] }), "E_REQUEST", /field 'inputs\.0\.shape\.0'/);
  // A claimed shape the body cannot hold: refused from the sizes alone.
  refuses(
    json({ inputs: [{ ...x, shape: [1000, 1000] }] }),
    "E_INPUT_SHAPE",
    /shape \[1000,1000\] has 1000000 values, more than the body's \d+ bytes can hold/,
  );
  refuses(
    json({ inputs: [{ ...x, shape: [1000, 1000], parameters: { binary_data_size: 4_000_000 } }] }),
    "E_REQUEST",
    /field 'inputs\.0\.data': binary input 'x' must not have data/,
  );
  const header = json({
    inputs: [
      { name: "x", shape: [1000, 1000], datatype: "FP32", parameters: { binary_data_size: 4_000_000 } },
    ],
  });
  refuses(
    Buffer.concat([header, Buffer.alloc(16)]),
    "E_REQUEST",
    /binary data ends at byte 4000000 after the JSON header, the body has 16/,
    String(header.length),
  );
  refuses(
    json({ inputs: [{ name: "s", shape: [1], datatype: "BYTES", data: ["a"] }] }),
    "E_INPUT_DTYPE",
    /'inputs\.0\.datatype': input 's' is BYTES/,
  );
});
