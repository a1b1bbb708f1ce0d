// ResNet zoo models: torchvision's parameter counts and state_dict names on the full-size graphs (cheap:
// weights are only declared), and the tiny configuration written to disk and run in onnxruntime.
import { test } from "node:test";
import assert from "node:assert/strict";
import { resnetModels } from "../../src/zoo/resnet.js";
import type { ZooModel } from "../../src/zoo/zoo-model.js";
import { checkTinyCnn } from "./cnn-test-kit.js";
import type { NodeProto } from "../../src/format/onnx-types.js";

function model(name: string): ZooModel {
  const m = resnetModels.find((x) => x.name === name);
  assert.ok(m, `zoo model ${name} exists`);
  return m;
}

function ints(node: NodeProto | undefined, attr: string): number[] | undefined {
  return node?.attribute?.find((a) => a.name === attr)?.ints;
}

test("full-size ResNets have torchvision's published parameter counts", () => {
  const expected = { resnet50: 25_557_032, resnet101: 44_549_160, resnet152: 60_192_808 };
  for (const [name, count] of Object.entries(expected)) {
    const m = model(name);
    assert.equal(m.publishedParameters, count);
    assert.equal(m.build().parameterCount(), count, name);
  }
});

test("resnet50 weighs ~102 MB: parameters plus BN running statistics as float32", () => {
  const g = model("resnet50").build();
  const buffers = g.weights.filter((w) => !w.isParameter);
  assert.ok(
    buffers.every((w) => /\.(running_mean|running_var)$/.test(w.name)),
    "only BN stats are buffers",
  );
  const bufferElements = buffers.reduce((n, w) => n + w.dims[0]!, 0);
  assert.equal(g.weightBytes(), 4 * (25_557_032 + bufferElements));
  assert.ok(g.weightBytes() > 102e6 && g.weightBytes() < 103e6, `${g.weightBytes()} bytes`);
});

test("resnet50 follows torchvision's state_dict names and v1.5 layout", () => {
  const g = model("resnet50").build();
  // torchvision's resnet50 state_dict has 320 entries, 53 of them num_batches_tracked (not exported).
  assert.equal(g.weights.length, 267);
  const names = new Set(g.weights.map((w) => w.name));
  for (const name of [
    "conv1.weight",
    "bn1.weight",
    "bn1.bias",
    "bn1.running_mean",
    "bn1.running_var",
    "layer1.0.conv1.weight",
    "layer1.0.downsample.0.weight",
    "layer1.0.downsample.1.running_var",
    "layer4.2.bn3.weight",
    "fc.weight",
    "fc.bias",
  ]) {
    assert.ok(names.has(name), `weight ${name}`);
  }
  assert.ok(!names.has("layer1.1.downsample.0.weight"), "downsample only on the first block");
  const dims = new Map(g.weights.map((w) => [w.name, w.dims]));
  assert.deepEqual(dims.get("conv1.weight"), [64, 3, 7, 7]);
  assert.deepEqual(dims.get("layer2.0.conv2.weight"), [128, 128, 3, 3]);
  assert.deepEqual(dims.get("layer3.0.downsample.0.weight"), [1024, 512, 1, 1]);
  assert.deepEqual(dims.get("fc.weight"), [1000, 2048]);

  const count = (op: string) => g.nodes.filter((n) => n.opType === op).length;
  assert.equal(count("Conv"), 53);
  assert.equal(count("BatchNormalization"), 53);
  assert.equal(count("Add"), 16);
  const node = (name: string) => g.nodes.find((n) => n.name === name);
  // v1.5: the stride sits on the 3x3 conv, not on the first 1x1.
  assert.deepEqual(ints(node("layer2.0.conv1"), "strides"), [1, 1]);
  assert.deepEqual(ints(node("layer2.0.conv2"), "strides"), [2, 2]);
  assert.deepEqual(ints(node("layer2.0.downsample.0"), "strides"), [2, 2]);
  assert.deepEqual(ints(node("conv1"), "pads"), [3, 3, 3, 3]);
  assert.deepEqual(ints(node("maxpool"), "pads"), [1, 1, 1, 1]);
  const fc = g.nodes.at(-1);
  assert.equal(fc?.opType, "Gemm");
  assert.deepEqual(fc?.output, ["logits"]);
  assert.equal(g.inputs[0]?.name, "input");
  assert.deepEqual(model("resnet50").exampleInputs, [
    { name: "input", dtype: "float32", dims: [1, 3, 224, 224], range: [0, 1] },
  ]);
});

test("resnet101 and resnet152 have 23 and 36 blocks in layer3", () => {
  for (const [name, blocks] of [
    ["resnet101", 23],
    ["resnet152", 36],
  ] as const) {
    const names = new Set(
      model(name)
        .build()
        .weights.map((w) => w.name),
    );
    assert.ok(names.has(`layer3.${blocks - 1}.conv3.weight`), name);
    assert.ok(!names.has(`layer3.${blocks}.conv3.weight`), name);
  }
});

test("tiny-resnet is tiny, runs in onnxruntime, and is reproducible from its seed", async () => {
  await checkTinyCnn(model("tiny-resnet"), [1, 3, 64, 64], 10);
});
