import { test } from "node:test";
import assert from "node:assert/strict";
import { isCicadaError } from "../../src/errors.js";
import { decodeModel, encodeModel } from "../../src/format/onnx-io.js";
import { DataType } from "../../src/format/onnx-types.js";
import { graphInputsOf, graphOutputsOf } from "../../src/importer/graph-inputs.js";
import { floatTensor, modelOf, node, vi } from "./tiny-models.js";

function model(metadata: Record<string, string> = {}) {
  // Encoded and decoded, so that a scalar's shape is what the protobuf decoder gives (no dims at all).
  return decodeModel(
    encodeModel(
      modelOf(
        {
          name: "g",
          input: [
            vi("ids", DataType.INT64, ["batch", "sequence"]),
            vi("pixels", DataType.FLOAT, [1, 3]),
            { name: "untyped_rank", type: { tensorType: { elemType: DataType.BOOL } } },
            vi("scalar", DataType.FLOAT, []),
            vi("bias", DataType.FLOAT, [3]),
          ],
          initializer: [floatTensor("bias", [3], new Float32Array(3))],
          output: [vi("y", DataType.FLOAT, [1, 3])],
          node: [node("Add", ["pixels", "bias"], ["y"])],
        },
        metadata,
      ),
    ),
  );
}

test("inputs exclude initializers; examples default to 1 for symbolic dims and [0,1) / [0,2) ranges", () => {
  const inputs = graphInputsOf(model(), "g.onnx");
  assert.deepEqual(inputs, [
    {
      name: "ids",
      dtype: "int64",
      shape: ["batch", "sequence"],
      example: { shape: [1, 1], range: [0, 2] },
    },
    { name: "pixels", dtype: "float32", shape: [1, 3], example: { shape: [1, 3], range: [0, 1] } },
    { name: "untyped_rank", dtype: "bool", shape: null, example: { shape: [1], range: [0, 2] } },
    { name: "scalar", dtype: "float32", shape: [], example: { shape: [], range: [0, 1] } },
  ]);
  assert.deepEqual(graphOutputsOf(model(), "g.onnx"), [{ name: "y", dtype: "float32", shape: [1, 3] }]);
});

test("cicada.example metadata sets example shapes and ranges, checked against the declared shape", () => {
  const inputs = graphInputsOf(
    model({ "cicada.example.ids.shape": "1,128", "cicada.example.ids.range": "0,32000" }),
    "g.onnx",
  );
  assert.deepEqual(inputs[0]!.example, { shape: [1, 128], range: [0, 32000] });
  const bad = (metadata: Record<string, string>, pattern: RegExp) =>
    assert.throws(
      () => graphInputsOf(model(metadata), "g.onnx"),
      (e) => isCicadaError(e, "E_ONNX_PARSE") && pattern.test(e.message),
    );
  bad(
    { "cicada.example.pixels.shape": "1,4" },
    /cicada\.example\.pixels\.shape is \[1,4\] but input 'pixels' has shape \[1,3\]/,
  );
  bad({ "cicada.example.ids.shape": "1" }, /ids\.shape/);
  bad({ "cicada.example.ids.range": "5,1" }, /ids\.range is '5,1'/);
  bad({ "cicada.example.ids.range": "a,b" }, /comma-separated numbers/);
});

test("non-tensor inputs are E_ONNX_UNSUPPORTED", () => {
  const m = model();
  m.graph!.input!.push({
    name: "seq",
    type: { sequenceType: { elemType: { tensorType: { elemType: 1 } } } },
  });
  assert.throws(
    () => graphInputsOf(m, "g.onnx"),
    (e) => isCicadaError(e, "E_ONNX_UNSUPPORTED") && /'seq' is not a tensor/.test(e.message),
  );
});
