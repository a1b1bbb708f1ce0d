// The tensor codec without a model or a socket: JSON tensors (flat and nested), the binary tensor data
// extension in both directions, and every malformed request refused with the field it names.
import { test } from "node:test";
import assert from "node:assert/strict";
import { isCicadaError, type ErrorCode } from "../../src/errors.js";
import type { TensorSpec } from "../../src/format/manifest.js";
import { decodeInferRequest, encodeOutputs, inferResponseBody } from "../../src/serve/tensor-codec.js";

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

function refuses(body: Uint8Array, code: ErrorCode, pattern: RegExp, headerLength: string | null = null) {
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
    (e) => isCicadaError(e, "E_RUNTIME"),
  );
});
