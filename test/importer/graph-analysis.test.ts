import { test } from "node:test";
import assert from "node:assert/strict";
import { isCicadaError } from "../../src/errors.js";
import { AttributeType, DataType, type GraphProto } from "../../src/format/onnx-types.js";
import {
  analyzeGraph,
  crossingCounts,
  crossingTensors,
  outerScopeReads,
  WEIGHT_MIN_BYTES,
} from "../../src/importer/graph-analysis.js";
import { constant, floatTensor, modelOf, node, values, vi, W } from "./tiny-models.js";

const io = { input: [vi("x", DataType.FLOAT, [1, W])], output: [vi("y", DataType.FLOAT, [1, W])] };

function analyze(graph: Partial<GraphProto>) {
  return analyzeGraph(modelOf({ name: "g", ...io, ...graph }), "g.onnx");
}

test("nodes are sorted topologically, stably, and dead nodes are pruned", () => {
  const a = analyze({
    node: [
      node("Relu", ["b"], ["y"]),
      node("Neg", ["x"], ["unused"]),
      node("Relu", ["x"], ["a"]),
      node("Sigmoid", ["a"], ["b"]),
    ],
  });
  assert.deepEqual(
    a.order.map((n) => n.outputs[0]),
    ["a", "b", "y"],
  );
  assert.equal(a.prunedNodes, 1);
  const sorted = analyze({
    node: [node("Relu", ["x"], ["p"]), node("Relu", ["x"], ["q"]), node("Add", ["q", "p"], ["y"])],
  });
  assert.deepEqual(
    sorted.order.map((n) => n.outputs[0]),
    ["p", "q", "y"],
    "an already sorted graph keeps its order",
  );
});

test("a self-loop and a longer cycle are named; so are duplicate definitions", () => {
  const fails = (graph: Partial<GraphProto>, pattern: RegExp) =>
    assert.throws(
      () => analyze(graph),
      (e) => isCicadaError(e, "E_ONNX_PARSE") && pattern.test(e.message),
    );
  fails({ node: [node("Add", ["x", "y"], ["y"])] }, /cycle: node 'y' \(Add\) produces 'y'/);
  fails(
    {
      node: [
        node("Relu", ["x"], ["a"]),
        node("Add", ["a", "c"], ["b"]),
        node("Relu", ["b"], ["c"]),
        node("Relu", ["c"], ["y"]),
      ],
    },
    /cycle: node '[bc]' \(\w+\) produces '[bc]'/,
  );
  fails(
    { node: [node("Relu", ["x"], ["y"]), node("Neg", ["x"], ["y"])] },
    /'y' is defined twice \(node 'y' \(Neg\)/,
  );
});

test("a graph output that no node computes is refused", () => {
  assert.throws(
    () =>
      analyzeGraph(
        modelOf({ name: "g", input: io.input, output: [vi("x", DataType.FLOAT, [1, W])], node: [] }),
        "g.onnx",
      ),
    (e) => isCicadaError(e, "E_ONNX_UNSUPPORTED") && /graph output 'x' is a graph input/.test(e.message),
  );
});

test("subgraphs' outer-scope reads count as their node's inputs", () => {
  const inner: GraphProto = {
    name: "inner",
    node: [node("Add", ["h", "local"], ["z"]), node("Mul", ["z", "w"], ["out"])],
    initializer: [floatTensor("local", [1], new Float32Array([1]))],
    output: [vi("out", DataType.FLOAT, [1, W])],
  };
  const outer: GraphProto = {
    name: "outer",
    node: [
      node(
        "If",
        ["cond"],
        ["r"],
        [
          { name: "then_branch", type: AttributeType.GRAPH, g: inner },
          {
            name: "else_branch",
            type: AttributeType.GRAPH,
            g: { name: "e", node: [node("Identity", ["k"], ["o2"])], output: [] },
          },
        ],
      ),
    ],
    output: [],
  };
  assert.deepEqual([...outerScopeReads(outer)], ["cond", "h", "w", "k"]);
});

test("small Constants are replicated, large ones become weights, and crossings are counted", () => {
  const big = floatTensor("", [W, W], values(W * W, 1));
  const a = analyze({
    node: [
      constant("half", [0.5]),
      {
        name: "bigc",
        opType: "Constant",
        input: [],
        output: ["big"],
        attribute: [{ name: "value", type: AttributeType.TENSOR, t: big }],
      },
      node("MatMul", ["x", "big"], ["m"]),
      node("Mul", ["m", "half"], ["s"]),
      node("Relu", ["s"], ["r"]),
      node("Add", ["r", "m"], ["t"]),
      node("Add", ["t", "x"], ["y"]),
    ],
  });
  assert.deepEqual([...a.constants.keys()], ["half"]);
  assert.equal(a.initializers.get("big")!.rawData!.length, W * W * 4);
  assert.ok(W * W * 4 >= WEIGHT_MIN_BYTES);
  assert.deepEqual(
    a.order.map((n) => n.outputs[0]),
    ["m", "s", "r", "t", "y"],
  );
  // m is read by the residual Add at position 3: cuts 2 and 3 carry m and one more tensor.
  assert.deepEqual([...crossingCounts(a)], [0, 1, 2, 2, 1, 0]);
  assert.deepEqual(crossingTensors(a, 2), ["m", "s"]);
});

test("a graph output produced early crosses every later cut", () => {
  const a = analyzeGraph(
    modelOf({
      name: "g",
      input: io.input,
      output: [vi("early", DataType.FLOAT, [1, W]), vi("y", DataType.FLOAT, [1, W])],
      node: [node("Relu", ["x"], ["early"]), node("Neg", ["early"], ["n"]), node("Exp", ["n"], ["y"])],
    }),
    "g.onnx",
  );
  assert.deepEqual([...crossingCounts(a)], [0, 1, 2, 0]);
});
