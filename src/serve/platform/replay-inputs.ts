// The request a replay (or a test) sends for a model: the model's example inputs (seeded, from its
// manifest) in the protocol's binary tensor data extension, outputs asked for as binary too
// (`binary_data_output`), so that neither side spends its time printing or parsing a million numbers.
// Built once per model and sent as is.
import type { Manifest } from "../../format/manifest.js";
import { randomInputs } from "../../runtime/model-inputs.js";
import type { InferRequestBytes } from "../../workload/replay.js";
import { inferRequestBody } from "../function/tensor-codec.js";

/** The binary infer request of `manifest`'s example inputs drawn with `seed`. */
export function binaryInferRequest(manifest: Manifest, seed = 0): InferRequestBytes {
  const { body, headerLength } = inferRequestBody(randomInputs(manifest.inputs, seed), {
    binary: true,
    parameters: { binary_data_output: true },
  });
  return {
    body,
    headers: {
      "content-type": "application/octet-stream",
      "inference-header-content-length": String(headerLength),
    },
  };
}
