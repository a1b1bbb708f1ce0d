// VGG zoo models: torchvision's parameter counts and state_dict names on the full-size graphs (cheap:
// weights are only declared), and the tiny configuration written to disk and run in onnxruntime.
import { test } from "node:test";
import assert from "node:assert/strict";
import { vggModels } from "../../src/zoo/vgg.js";
import type { ZooModel } from "../../src/zoo/zoo-model.js";
import { checkTinyCnn } from "./cnn-test-kit.js";

function model(name: string): ZooModel {
  const m = vggModels.find((x) => x.name === name);
  assert.ok(m, `zoo model ${name} exists`);
  return m;
}

test("full-size VGGs have torchvision's published parameter counts", () => {
  const expected = { vgg11: 132_863_336, vgg13: 133_047_848, vgg16: 138_357_544, vgg19: 143_667_240 };
  for (const [name, count] of Object.entries(expected)) {
    const m = model(name);
    assert.equal(m.publishedParameters, count);
    const g = m.build();
    assert.equal(g.parameterCount(), count, name);
    // No batch norm, so no buffers: every weight is a parameter.
    assert.equal(g.weightBytes(), 4 * count, name);
  }
});

test("vgg16 follows torchvision's state_dict names and layout", () => {
  const g = model("vgg16").build();
  // 13 convs and 3 Linears, weight and bias each.
  assert.equal(g.weights.length, 32);
  const dims = new Map(g.weights.map((w) => [w.name, w.dims]));
  assert.deepEqual(dims.get("features.0.weight"), [64, 3, 3, 3]);
  assert.deepEqual(dims.get("features.2.weight"), [64, 64, 3, 3]);
  // features.4 is the first MaxPool: the next conv is features.5.
  assert.equal(dims.get("features.4.weight"), undefined);
  assert.deepEqual(dims.get("features.5.weight"), [128, 64, 3, 3]);
  assert.deepEqual(dims.get("features.28.weight"), [512, 512, 3, 3]);
  assert.deepEqual(dims.get("features.28.bias"), [512]);
  assert.deepEqual(dims.get("classifier.0.weight"), [4096, 25088]);
  assert.deepEqual(dims.get("classifier.3.weight"), [4096, 4096]);
  assert.deepEqual(dims.get("classifier.6.weight"), [1000, 4096]);
  assert.deepEqual(dims.get("classifier.6.bias"), [1000]);

  const count = (op: string) => g.nodes.filter((n) => n.opType === op).length;
  assert.equal(count("Conv"), 13);
  assert.equal(count("MaxPool"), 5);
  assert.equal(count("Gemm"), 3);
  assert.equal(count("Relu"), 15);
  assert.equal(count("Dropout"), 0);
  assert.deepEqual(g.nodes.at(-1)?.output, ["logits"]);
  assert.deepEqual(model("vgg16").exampleInputs, [
    { name: "input", dtype: "float32", dims: [1, 3, 224, 224], range: [0, 1] },
  ]);
});

test("VGG depths: 8, 10, 13 and 16 convs", () => {
  const convs = (name: string) =>
    model(name)
      .build()
      .nodes.filter((n) => n.opType === "Conv").length;
  assert.deepEqual(["vgg11", "vgg13", "vgg16", "vgg19"].map(convs), [8, 10, 13, 16]);
});

test("tiny-vgg is tiny, runs in onnxruntime, and is reproducible from its seed", async () => {
  await checkTinyCnn(model("tiny-vgg"), [1, 3, 32, 32], 10);
});
