import { test } from "node:test";
import assert from "node:assert/strict";
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { isCicadaError } from "../../src/errors.js";
import { decodeModel, encodeModel, readOnnxFile, setExternal, tensorData } from "../../src/format/onnx-io.js";
import { DataType, type ModelProto, type TensorProto } from "../../src/format/onnx-types.js";

function model(initializer: TensorProto[]): ModelProto {
  return {
    irVersion: 8,
    opsetImport: [{ domain: "", version: 17 }],
    graph: {
      name: "g",
      node: [
        {
          opType: "Identity",
          input: ["w"],
          output: ["y"],
          attribute: [{ name: "ends", type: 7, ints: [9223372036854775807, -9223372036854775808] }],
        },
      ],
      initializer,
      output: [
        { name: "y", type: { tensorType: { elemType: DataType.FLOAT, shape: { dim: [{ dimValue: 2 }] } } } },
      ],
    },
  };
}

test("a model round-trips through encode/decode, INT64 sentinels included", () => {
  const m = model([{ name: "w", dims: [2], dataType: DataType.FLOAT, floatData: [1.5, -2] }]);
  const back = decodeModel(encodeModel(m));
  assert.equal(back.graph!.node![0]!.opType, "Identity");
  assert.deepEqual(back.graph!.initializer![0]!.floatData, [1.5, -2]);
  const ints = back.graph!.node![0]!.attribute![0]!.ints!;
  // NOTE: int64 decodes to a double; the sentinels clamp back to INT64_MAX/MIN when re-encoded.
  const again = decodeModel(encodeModel(back)).graph!.node![0]!.attribute![0]!.ints!;
  assert.deepEqual(again, ints);
  assert.ok(ints[0]! > 9.2e18 && ints[1]! < -9.2e18);
});

test("tensor bytes come from typed fields, raw data or external files alike", async () => {
  const dir = await mkdtemp(join(tmpdir(), "cicada-onnx-"));
  try {
    const expected = new Uint8Array(new Float32Array([1.5, -2]).buffer);
    const typed: TensorProto = { name: "w", dims: [2], dataType: DataType.FLOAT, floatData: [1.5, -2] };
    assert.deepEqual(await tensorData(typed, dir, "m"), expected);
    const raw: TensorProto = { name: "w", dims: [2], dataType: DataType.FLOAT, rawData: expected };
    assert.deepEqual(await tensorData(raw, dir, "m"), expected);
    const ints: TensorProto = { name: "i", dims: [2], dataType: DataType.INT64, int64Data: [7, -1] };
    assert.deepEqual(
      new BigInt64Array((await tensorData(ints, dir, "m")).slice().buffer),
      new BigInt64Array([7n, -1n]),
    );

    await writeFile(join(dir, "w.bin"), Buffer.concat([Buffer.alloc(16), Buffer.from(expected)]));
    const ext: TensorProto = { name: "w", dims: [2], dataType: DataType.FLOAT };
    setExternal(ext, { location: "w.bin", offset: 16, length: 8 });
    assert.deepEqual(new Uint8Array(await tensorData(ext, dir, "m")), expected);

    setExternal(ext, { location: "w.bin", offset: 20, length: 8 });
    await assert.rejects(
      tensorData(ext, dir, "m.onnx"),
      (e) => isCicadaError(e, "E_ONNX_EXTERNAL_DATA") && /too short/.test(e.message) && /'w'/.test(e.message),
    );
    setExternal(ext, { location: "missing.bin", offset: 0, length: 8 });
    await assert.rejects(
      tensorData(ext, dir, "m.onnx"),
      (e) => isCicadaError(e, "E_ONNX_EXTERNAL_DATA") && /missing\.bin/.test(e.message),
    );
    setExternal(ext, { location: "../escape.bin", offset: 0, length: 8 });
    await assert.rejects(
      tensorData(ext, dir, "m.onnx"),
      (e) => isCicadaError(e, "E_ONNX_EXTERNAL_DATA") && /outside the model directory/.test(e.message),
    );
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});

test("truncated and non-ONNX files are refused with E_ONNX_PARSE naming the file", async () => {
  const dir = await mkdtemp(join(tmpdir(), "cicada-onnx-"));
  try {
    const bytes = encodeModel(model([{ name: "w", dims: [2], dataType: DataType.FLOAT, floatData: [1, 2] }]));
    const truncated = join(dir, "truncated.onnx");
    await writeFile(truncated, bytes.subarray(0, bytes.length - 7));
    await assert.rejects(
      readOnnxFile(truncated),
      (e) => isCicadaError(e, "E_ONNX_PARSE") && e.message.includes(truncated),
    );
    const text = join(dir, "notes.onnx");
    await writeFile(text, "this is not a model\n");
    await assert.rejects(
      readOnnxFile(text),
      (e) => isCicadaError(e, "E_ONNX_PARSE") && e.message.includes(text),
    );
    await assert.rejects(
      readOnnxFile(join(dir, "absent.onnx")),
      (e) => isCicadaError(e, "E_ONNX_PARSE") && /cannot read/.test(e.message),
    );
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});
