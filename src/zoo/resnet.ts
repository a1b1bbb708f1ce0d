// The ResNet family of the zoo: torchvision's ResNet v1.5 (Bottleneck blocks, stride on the 3x3 conv)
// rebuilt node by node in ONNX, with torchvision's state_dict names so that a bundle's weights read like
// a PyTorch checkpoint. Weights are seeded random, scaled so that the 50-152 layer networks stay
// numerically healthy end to end (the pipelined strategies are checked against the reference by cosine
// similarity of every stage output, which needs finite, input-dependent activations everywhere).
import { DataType } from "../format/onnx-types.js";
import { GraphBuilder, uniformStd, type WeightInit } from "./graph-builder.js";
import type { ZooModel } from "./zoo-model.js";

/** The dimensions of one ResNet configuration. */
export interface ResNetConfig {
  name: string;
  /** Bottleneck blocks in layer1..layer4. */
  layers: [number, number, number, number];
  /** Width of the stem and of layer1's bottleneck (torchvision: 64); doubles with each layer. */
  baseWidth: number;
  classes: number;
  /** Input height and width. */
  imageSize: number;
}

/** torchvision's Bottleneck.expansion: the last 1x1 conv widens the block's output four times. */
const EXPANSION = 4;

/** BatchNormalization epsilon, as torch.nn.BatchNorm2d. */
const BN_EPSILON = 1e-5;

/** Kaiming-like scale for a conv followed by ReLU: keeps the second moment of activations. */
function kaiming(fanIn: number): WeightInit {
  return uniformStd(Math.sqrt(2 / fanIn));
}

/** A uniform init centred on `centre` with half-width `spread`. */
function around(centre: number, spread: number): WeightInit {
  return { kind: "uniform", low: centre - spread, high: centre + spread };
}

/** Emits ResNet nodes into a builder, tracking the channel count of the running activation. */
class ResNetEmitter {
  constructor(readonly b: GraphBuilder) {}

  /** Conv without bias (every ResNet conv is followed by a BN). */
  conv(prefix: string, x: string, cin: number, cout: number, k: number, stride: number): string {
    const w = this.b.weight(`${prefix}.weight`, [cout, cin, k, k], kaiming(cin * k * k));
    const pad = (k - 1) >> 1;
    return this.b.node(
      "Conv",
      [x, w],
      { kernel_shape: [k, k], strides: [stride, stride], pads: [pad, pad, pad, pad] },
      prefix,
    );
  }

  /**
   * Inference-mode BatchNorm2d. `gamma` is the centre of the scale init: 1 for most BNs, small for the
   * last BN of a residual branch so that the sum x + branch grows slowly over dozens of blocks (the
   * spirit of torchvision's zero_init_residual without making the branch vanish).
   */
  bn(prefix: string, x: string, channels: number, gamma = 1): string {
    const b = this.b;
    const scale = b.weight(`${prefix}.weight`, [channels], around(gamma, 0.1 * gamma));
    const bias = b.weight(`${prefix}.bias`, [channels], around(0, 0.05));
    // Running statistics are buffers, not parameters: they do not count in the published figures.
    const mean = b.weight(`${prefix}.running_mean`, [channels], around(0, 0.05), false);
    const variance = b.weight(`${prefix}.running_var`, [channels], around(1, 0.1), false);
    return b.node("BatchNormalization", [x, scale, bias, mean, variance], { epsilon: BN_EPSILON }, prefix);
  }

  relu(x: string, name: string): string {
    return this.b.node("Relu", [x], {}, name);
  }

  /** torchvision's Bottleneck: 1x1 reduce, 3x3 (carrying the stride), 1x1 expand, residual add, ReLU. */
  bottleneck(prefix: string, x: string, cin: number, planes: number, stride: number): string {
    const cout = planes * EXPANSION;
    let y = this.conv(`${prefix}.conv1`, x, cin, planes, 1, 1);
    y = this.relu(this.bn(`${prefix}.bn1`, y, planes), `${prefix}.relu1`);
    y = this.conv(`${prefix}.conv2`, y, planes, planes, 3, stride);
    y = this.relu(this.bn(`${prefix}.bn2`, y, planes), `${prefix}.relu2`);
    y = this.conv(`${prefix}.conv3`, y, planes, cout, 1, 1);
    y = this.bn(`${prefix}.bn3`, y, cout, 0.2);
    let identity = x;
    if (stride !== 1 || cin !== cout) {
      // downsample = Sequential(conv1x1(stride), BatchNorm2d): indices 0 and 1 in the state_dict.
      identity = this.conv(`${prefix}.downsample.0`, x, cin, cout, 1, stride);
      identity = this.bn(`${prefix}.downsample.1`, identity, cout);
    }
    const sum = this.b.node("Add", [y, identity], {}, `${prefix}.add`);
    return this.relu(sum, `${prefix}.relu3`);
  }
}

/** Builds the ONNX graph of a ResNet configuration (weights declared, not generated). */
export function buildResNet(config: ResNetConfig): GraphBuilder {
  const b = new GraphBuilder(config.name);
  const e = new ResNetEmitter(b);
  const { baseWidth: width, imageSize: size } = config;
  let x = b.input("input", DataType.FLOAT, [1, 3, size, size]);
  x = e.conv("conv1", x, 3, width, 7, 2);
  x = e.relu(e.bn("bn1", x, width), "relu");
  x = b.node("MaxPool", [x], { kernel_shape: [3, 3], strides: [2, 2], pads: [1, 1, 1, 1] }, "maxpool");
  let channels = width;
  config.layers.forEach((blocks, layer) => {
    const planes = width << layer;
    for (let i = 0; i < blocks; i++) {
      // Only the first block of layer2..layer4 halves the resolution.
      const stride = i === 0 && layer > 0 ? 2 : 1;
      x = e.bottleneck(`layer${layer + 1}.${i}`, x, channels, planes, stride);
      channels = planes * EXPANSION;
    }
  });
  x = b.node("GlobalAveragePool", [x], {}, "avgpool");
  x = b.node("Flatten", [x], { axis: 1 }, "flatten");
  // Linear(channels, classes) with a ReLU-free input: fan-in scale without the ReLU gain.
  const fcWeight = b.weight("fc.weight", [config.classes, channels], uniformStd(Math.sqrt(1 / channels)));
  const fcBias = b.weight("fc.bias", [config.classes], around(0, 0.05));
  b.node("Gemm", [x, fcWeight, fcBias], { transB: 1 }, "fc");
  b.renameLastOutput("logits");
  b.output("logits", DataType.FLOAT, [1, config.classes]);
  return b;
}

function resnetModel(config: ResNetConfig, description: string, publishedParameters?: number): ZooModel {
  const model: ZooModel = {
    name: config.name,
    family: "resnet",
    description,
    build: () => buildResNet(config),
    exampleInputs: [
      { name: "input", dtype: "float32", dims: [1, 3, config.imageSize, config.imageSize], range: [0, 1] },
    ],
  };
  if (publishedParameters !== undefined) model.publishedParameters = publishedParameters;
  return model;
}

const FULL = { baseWidth: 64, classes: 1000, imageSize: 224 } as const;

/** ResNet-50/101/152 as torchvision defines them, and a tiny configuration of the same code for tests. */
export const resnetModels: ZooModel[] = [
  resnetModel(
    { name: "resnet50", layers: [3, 4, 6, 3], ...FULL },
    "ResNet-50 v1.5 (torchvision), 1x3x224x224 -> 1000 logits",
    25_557_032,
  ),
  resnetModel(
    { name: "resnet101", layers: [3, 4, 23, 3], ...FULL },
    "ResNet-101 v1.5 (torchvision), 1x3x224x224 -> 1000 logits",
    44_549_160,
  ),
  resnetModel(
    { name: "resnet152", layers: [3, 8, 36, 3], ...FULL },
    "ResNet-152 v1.5 (torchvision), 1x3x224x224 -> 1000 logits",
    60_192_808,
  ),
  resnetModel(
    { name: "tiny-resnet", layers: [1, 1, 1, 1], baseWidth: 8, classes: 10, imageSize: 64 },
    "Tiny ResNet for tests: ResNet-50 code with one block per layer, base width 8, 1x3x64x64 -> 10 logits",
  ),
];
