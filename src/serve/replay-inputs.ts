// The request a replay (or a test) sends for a model: the model's example inputs (seeded, from its
// manifest) in the protocol's binary tensor data extension — a JSON header of Inference-Header-Content-Length
// bytes, then each tensor's little-endian bytes — with every output asked for as binary too, so that neither
// side spends its time printing or parsing a million numbers. Built once per model and sent as is.
import type { Manifest } from "../format/manifest.js";
import { randomInputs } from "../runtime/model-inputs.js";
import { DATATYPE_OF } from "./protocol-schemas.js";

/** A ready-to-send infer request. */
export interface InferRequestBytes {
  body: Uint8Array;
  headers: Record<string, string>;
}

/** The binary infer request of `manifest`'s example inputs drawn with `seed`. */
export function binaryInferRequest(manifest: Manifest, seed = 0): InferRequestBytes {
  const feeds = randomInputs(manifest.inputs, seed);
  const tensors = Object.entries(feeds).map(([name, t]) => ({
    name,
    t,
    bytes: new Uint8Array(t.data.buffer, t.data.byteOffset, t.data.byteLength),
  }));
  const header = new TextEncoder().encode(
    JSON.stringify({
      inputs: tensors.map(({ name, t, bytes }) => ({
        name,
        shape: t.dims,
        datatype: DATATYPE_OF[t.dtype],
        parameters: { binary_data_size: bytes.byteLength },
      })),
      outputs: manifest.outputs.map((o) => ({ name: o.name, parameters: { binary_data: true } })),
    }),
  );
  const body = new Uint8Array(header.byteLength + tensors.reduce((n, x) => n + x.bytes.byteLength, 0));
  body.set(header);
  let at = header.byteLength;
  for (const { bytes } of tensors) {
    body.set(bytes, at);
    at += bytes.byteLength;
  }
  return {
    body,
    headers: {
      "content-type": "application/octet-stream",
      "inference-header-content-length": String(header.byteLength),
    },
  };
}
