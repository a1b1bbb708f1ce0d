// onnxruntime-node's version without loading the native addon: cache keys need it on the main thread,
// which otherwise never runs onnxruntime (sessions live in the stage workers), and importing the addon
// there costs a cold start ~20 ms and its memory.
import { createRequire } from "node:module";

/** onnxruntime-node's package version (what `ort.env.versions.node` reports). */
export const ORT_VERSION: string = (
  createRequire(import.meta.url)("onnxruntime-node/package.json") as { version: string }
).version;
