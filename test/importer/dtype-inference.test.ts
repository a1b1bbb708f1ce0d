import { test } from "node:test";
import assert from "node:assert/strict";
import { isCicadaError } from "../../src/errors.js";
import { AttributeType, DataType, type NodeProto } from "../../src/format/onnx-types.js";
import { inferTensorTypes, outputElemType, requireType } from "../../src/importer/dtype-inference.js";
import { analyzeGraph } from "../../src/importer/graph-analysis.js";
import { modelOf, node, vi } from "./tiny-models.js";

const known: Record<string, number> = {
  f: DataType.FLOAT,
  h: DataType.FLOAT16,
  i: DataType.INT64,
  b: DataType.BOOL,
  u8: DataType.UINT8,
  i8: DataType.INT8,
};
const typeOf = (name: string) => known[name];
const int = (name: string, i: number) => ({ name, type: AttributeType.INT, i });

function typeOfOutput(n: NodeProto, index = 0): number | undefined {
  return outputElemType(n, index, typeOf);
}

test("the first input's type, except where the operator says otherwise", () => {
  assert.equal(typeOfOutput(node("Relu", ["h"], ["o"])), DataType.FLOAT16);
  assert.equal(
    typeOfOutput(node("Add", ["", "f"], ["o"])),
    DataType.FLOAT,
    "optional empty inputs are skipped",
  );
  for (const op of ["Shape", "Size", "NonZero", "ArgMax", "ArgMin"]) {
    assert.equal(typeOfOutput(node(op, ["f"], ["o"])), DataType.INT64, op);
  }
  for (const op of ["Equal", "Less", "Greater", "Not", "And", "Or", "IsNaN", "IsInf"]) {
    assert.equal(typeOfOutput(node(op, ["f", "f"], ["o"])), DataType.BOOL, op);
  }
  assert.equal(typeOfOutput(node("Cast", ["f"], ["o"], [int("to", DataType.INT32)])), DataType.INT32);
  assert.equal(typeOfOutput(node("CastLike", ["f", "h"], ["o"])), DataType.FLOAT16);
  assert.equal(typeOfOutput(node("ConstantOfShape", ["i"], ["o"])), DataType.FLOAT);
  const i32 = {
    name: "value",
    type: AttributeType.TENSOR,
    t: { dims: [1], dataType: DataType.INT32, int32Data: [0] },
  };
  assert.equal(typeOfOutput(node("ConstantOfShape", ["i"], ["o"], [i32])), DataType.INT32);
  assert.equal(typeOfOutput(node("Constant", [], ["o"], [i32])), DataType.INT32);
  assert.equal(
    typeOfOutput(node("Constant", [], ["o"], [{ name: "value_ints", type: AttributeType.INTS, ints: [1] }])),
    DataType.INT64,
  );
  assert.equal(
    typeOfOutput(node("Constant", [], ["o"], [{ name: "value_float", type: AttributeType.FLOAT, f: 1 }])),
    DataType.FLOAT,
  );
  assert.equal(typeOfOutput(node("Range", ["i", "i", "i"], ["o"])), DataType.INT64);
  assert.equal(typeOfOutput(node("TopK", ["h", "i"], ["v", "ix"]), 0), DataType.FLOAT16);
  assert.equal(typeOfOutput(node("TopK", ["h", "i"], ["v", "ix"]), 1), DataType.INT64);
  assert.equal(typeOfOutput(node("Where", ["b", "h", "h"], ["o"])), DataType.FLOAT16);
  assert.equal(typeOfOutput(node("DequantizeLinear", ["i8", "f"], ["o"])), DataType.FLOAT);
  assert.equal(typeOfOutput(node("QuantizeLinear", ["f", "f", "i8"], ["o"])), DataType.INT8);
  assert.equal(typeOfOutput(node("QuantizeLinear", ["f", "f"], ["o"])), DataType.UINT8);
  assert.equal(typeOfOutput(node("Dropout", ["f"], ["o", "mask"]), 1), DataType.BOOL);
  assert.equal(typeOfOutput(node("MatMulInteger", ["u8", "u8"], ["o"])), DataType.INT32);
  assert.equal(typeOfOutput(node("Cast", ["f"], ["o"])), undefined, "Cast without 'to' cannot be typed");
  const custom: NodeProto = { opType: "Shape", domain: "com.example", input: ["h"], output: ["o"] };
  assert.equal(typeOfOutput(custom), DataType.FLOAT16, "other domains follow the default rule");
});

test("control flow outputs take their branch's or body's output types", () => {
  const g = (types: number[]) => ({
    name: "g",
    output: types.map((t, i) => vi(`o${i}`, t, [])),
  });
  const ifNode = node(
    "If",
    ["b"],
    ["r"],
    [
      { name: "then_branch", type: AttributeType.GRAPH, g: g([DataType.INT32]) },
      { name: "else_branch", type: AttributeType.GRAPH, g: g([DataType.INT32]) },
    ],
  );
  assert.equal(typeOfOutput(ifNode), DataType.INT32);
  const loop = node(
    "Loop",
    ["i", "b", "f"],
    ["carried", "scanned"],
    [{ name: "body", type: AttributeType.GRAPH, g: g([DataType.BOOL, DataType.FLOAT, DataType.INT8]) }],
  );
  assert.equal(typeOfOutput(loop, 0), DataType.FLOAT);
  assert.equal(typeOfOutput(loop, 1), DataType.INT8);
});

test("declared types win over propagation; shapes are copied, never guessed", () => {
  const a = analyzeGraph(
    modelOf({
      name: "g",
      input: [vi("x", DataType.FLOAT, ["batch", 4])],
      output: [vi("y", DataType.INT64, [2])],
      valueInfo: [vi("r", DataType.FLOAT, ["batch", 4])],
      node: [
        node("Relu", ["x"], ["r"]),
        node("Neg", ["r"], ["n"]),
        node("Greater", ["n", "x"], ["g"]),
        node("Cast", ["g"], ["c"], [int("to", DataType.INT64)]),
        node("Shape", ["c"], ["y"]),
      ],
    }),
    "g.onnx",
  );
  const types = inferTensorTypes(a);
  assert.deepEqual(types.get("r"), { elemType: DataType.FLOAT, shape: ["batch", 4] });
  assert.deepEqual(types.get("n"), { elemType: DataType.FLOAT, shape: null });
  assert.equal(types.get("g")!.elemType, DataType.BOOL);
  assert.equal(types.get("c")!.elemType, DataType.INT64);
  assert.deepEqual(types.get("y"), { elemType: DataType.INT64, shape: [2] });
  types.delete("n");
  assert.throws(
    () => requireType(types, "n", a),
    (e) =>
      isCicadaError(e, "E_ONNX_UNSUPPORTED") && /tensor 'n' \(written by node 'n' \(Neg\)\)/.test(e.message),
  );
});
