// The zoo's index: every model by name, and writing one to disk with the metadata the importer and the
// runner read back (family, example inputs).
import { CicadaError } from "../errors.js";
import { llamaModels } from "./llama.js";
import { writeZooModel, type WriteProgress, type WrittenModel } from "./model-writer.js";
import { optModels } from "./opt.js";
import { resnetModels } from "./resnet.js";
import { vggModels } from "./vgg.js";
import { exampleInputMetadata, type ZooModel } from "./zoo-model.js";

/** Every zoo model, full-size and tiny. */
export const ZOO: readonly ZooModel[] = [...resnetModels, ...vggModels, ...llamaModels, ...optModels];

/** The zoo model named `name`; E_ZOO_UNKNOWN lists the names when there is none. */
export function findZooModel(name: string): ZooModel {
  const model = ZOO.find((m) => m.name === name);
  if (!model) {
    throw new CicadaError(
      "E_ZOO_UNKNOWN",
      `no zoo model named '${name}'; known: ${ZOO.map((m) => m.name).join(", ")}`,
    );
  }
  return model;
}

/** Writes zoo model `name` into the new directory `outDir` as model.onnx + model.onnx.data. */
export async function generateZooModel(
  name: string,
  outDir: string,
  options: { seed?: number; onProgress?: WriteProgress } = {},
): Promise<WrittenModel> {
  const model = findZooModel(name);
  return writeZooModel(model.build(), outDir, {
    seed: options.seed ?? 0,
    metadata: {
      "cicada.name": model.name,
      "cicada.family": model.family,
      ...exampleInputMetadata(model.exampleInputs),
    },
    ...(options.onProgress ? { onProgress: options.onProgress } : {}),
  });
}
