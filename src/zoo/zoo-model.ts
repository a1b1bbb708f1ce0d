// What a zoo entry is: a named architecture configuration that builds its graph, with the example
// inputs a cold-start run feeds it and the parameter count its publishers state.
import type { GraphBuilder } from "./graph-builder.js";

/** An example input of a zoo model: shape, element type, and for token ids the valid range. */
export interface ExampleInput {
  name: string;
  dtype: "float32" | "int64";
  dims: number[];
  /** Integers are drawn from [low, high); floats from [low, high) too. */
  range: [number, number];
}

export type ZooFamily = "resnet" | "vgg" | "llama" | "opt";

/** A model of the zoo. */
export interface ZooModel {
  /** CLI name, e.g. `resnet50`, `tiny-llama`. */
  name: string;
  family: ZooFamily;
  description: string;
  /** Builds the graph (cheap: weights are declared, not generated). */
  build(): GraphBuilder;
  exampleInputs: ExampleInput[];
  /** Published trainable-parameter count (torchvision / Hugging Face), when there is one. */
  publishedParameters?: number;
}

/** Metadata keys recording example inputs in the written model, read back by the importer and runner. */
export function exampleInputMetadata(inputs: ExampleInput[]): Record<string, string> {
  const out: Record<string, string> = {};
  for (const i of inputs) {
    out[`cicada.example.${i.name}.shape`] = i.dims.join(",");
    out[`cicada.example.${i.name}.range`] = i.range.join(",");
  }
  return out;
}
