// The VGG family of the zoo: torchvision's VGG-11/13/16/19 without batch norm (configurations A, B, D,
// E), rebuilt in ONNX with torchvision's state_dict names (`features.N`, `classifier.N`). VGG is the
// zoo's "few large layers" shape: most of its ~0.5 GB sits in the first classifier Linear, which makes
// it the stress case for stage balancing and per-stage weight retrieval.
import { DataType } from "../format/onnx-types.js";
import { GraphBuilder, uniformStd, type WeightInit } from "./graph-builder.js";
import type { ZooModel } from "./zoo-model.js";

/** A feature-extractor entry: output channels of a conv3x3+ReLU, or "M" for MaxPool 2x2/2. */
export type VggLayer = number | "M";

/** The dimensions of one VGG configuration. */
export interface VggConfig {
  name: string;
  features: VggLayer[];
  /** Width of the two hidden classifier Linears (torchvision: 4096). */
  hidden: number;
  classes: number;
  /** Input height and width. */
  imageSize: number;
}

/** torchvision's `cfgs` (vgg.py): the feature extractors of VGG-11, -13, -16 and -19. */
export const VGG_CONFIGS: Record<"A" | "B" | "D" | "E", VggLayer[]> = {
  A: [64, "M", 128, "M", 256, 256, "M", 512, 512, "M", 512, 512, "M"],
  B: [64, 64, "M", 128, 128, "M", 256, 256, "M", 512, 512, "M", 512, 512, "M"],
  D: [64, 64, "M", 128, 128, "M", 256, 256, 256, "M", 512, 512, 512, "M", 512, 512, 512, "M"],
  E: [64, 64, "M", 128, 128, "M", 256, 256, 256, 256, "M", 512, 512, 512, 512, "M", 512, 512, 512, 512, "M"],
};

/** Kaiming-like scale for a layer followed by ReLU: keeps the second moment of activations. */
function kaiming(fanIn: number): WeightInit {
  return uniformStd(Math.sqrt(2 / fanIn));
}

/** Small random biases (torchvision zeroes them; random ones make a misplaced bias detectable). */
const BIAS: WeightInit = { kind: "uniform", low: -0.05, high: 0.05 };

/**
 * A Linear layer as ONNX Gemm(transB=1): weight [out, in] as PyTorch stores it. `gain` 2 for a layer
 * followed by ReLU, 1 for the logits.
 */
function linear(b: GraphBuilder, prefix: string, x: string, cin: number, cout: number, gain: number): string {
  const w = b.weight(`${prefix}.weight`, [cout, cin], uniformStd(Math.sqrt(gain / cin)));
  const bias = b.weight(`${prefix}.bias`, [cout], BIAS);
  return b.node("Gemm", [x, w, bias], { transB: 1 }, prefix);
}

/** Builds the ONNX graph of a VGG configuration (weights declared, not generated). */
export function buildVgg(config: VggConfig): GraphBuilder {
  const b = new GraphBuilder(config.name);
  let x = b.input("input", DataType.FLOAT, [1, 3, config.imageSize, config.imageSize]);
  let channels = 3;
  let size = config.imageSize;
  // `index` follows nn.Sequential numbering: a conv takes two slots (Conv2d, ReLU), a pool one.
  let index = 0;
  for (const layer of config.features) {
    if (layer === "M") {
      x = b.node("MaxPool", [x], { kernel_shape: [2, 2], strides: [2, 2] }, `features.${index}`);
      size = Math.floor(size / 2);
      index += 1;
      continue;
    }
    const prefix = `features.${index}`;
    const w = b.weight(`${prefix}.weight`, [layer, channels, 3, 3], kaiming(channels * 9));
    const bias = b.weight(`${prefix}.bias`, [layer], BIAS);
    x = b.node("Conv", [x, w, bias], { kernel_shape: [3, 3], pads: [1, 1, 1, 1] }, prefix);
    x = b.node("Relu", [x], {}, `features.${index + 1}`);
    channels = layer;
    index += 2;
  }
  // torchvision's AdaptiveAvgPool2d((7, 7)) is left out: for a 224x224 input the features are 7x7
  // already and it is the identity. The tiny configuration has no such pool either; its classifier
  // takes the flattened feature map as it is.
  x = b.node("Flatten", [x], { axis: 1 }, "flatten");
  const flat = channels * size * size;
  // classifier = Linear, ReLU, Dropout, Linear, ReLU, Dropout, Linear; dropout is the identity at
  // inference and is omitted, but the state_dict indices (0, 3, 6) keep their places.
  x = linear(b, "classifier.0", x, flat, config.hidden, 2);
  x = b.node("Relu", [x], {}, "classifier.1");
  x = linear(b, "classifier.3", x, config.hidden, config.hidden, 2);
  x = b.node("Relu", [x], {}, "classifier.4");
  linear(b, "classifier.6", x, config.hidden, config.classes, 1);
  b.renameLastOutput("logits");
  b.output("logits", DataType.FLOAT, [1, config.classes]);
  return b;
}

function vggModel(config: VggConfig, description: string, publishedParameters?: number): ZooModel {
  const model: ZooModel = {
    name: config.name,
    family: "vgg",
    description,
    build: () => buildVgg(config),
    exampleInputs: [
      { name: "input", dtype: "float32", dims: [1, 3, config.imageSize, config.imageSize], range: [0, 1] },
    ],
  };
  if (publishedParameters !== undefined) model.publishedParameters = publishedParameters;
  return model;
}

const FULL = { hidden: 4096, classes: 1000, imageSize: 224 } as const;

/** VGG-11/13/16/19 as torchvision defines them (no batch norm), and a tiny configuration for tests. */
export const vggModels: ZooModel[] = [
  vggModel(
    { name: "vgg11", features: VGG_CONFIGS.A, ...FULL },
    "VGG-11 (torchvision cfg A), 1x3x224x224 -> 1000 logits",
    132_863_336,
  ),
  vggModel(
    { name: "vgg13", features: VGG_CONFIGS.B, ...FULL },
    "VGG-13 (torchvision cfg B), 1x3x224x224 -> 1000 logits",
    133_047_848,
  ),
  vggModel(
    { name: "vgg16", features: VGG_CONFIGS.D, ...FULL },
    "VGG-16 (torchvision cfg D), 1x3x224x224 -> 1000 logits",
    138_357_544,
  ),
  vggModel(
    { name: "vgg19", features: VGG_CONFIGS.E, ...FULL },
    "VGG-19 (torchvision cfg E), 1x3x224x224 -> 1000 logits",
    143_667_240,
  ),
  vggModel(
    { name: "tiny-vgg", features: [8, "M", 16, 16, "M", 32, "M"], hidden: 32, classes: 10, imageSize: 32 },
    "Tiny VGG for tests: three conv stages, 1x3x32x32 -> 10 logits",
  ),
];
