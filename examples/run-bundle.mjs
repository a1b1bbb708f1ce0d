// First contact with the runtime API: load a bundle, answer one request, exit.
//
//   npx cicada zoo tiny-resnet --out model && npx cicada import model/model.onnx --out bundle
//   node examples/run-bundle.mjs bundle
import { createRuntime, loadModel } from "cicada-node";

const bundleDir = process.argv[2] ?? "bundle";
const runtime = await createRuntime(); // starts nothing yet: workers start when a load needs one
try {
  const model = await loadModel(runtime, bundleDir, { strategy: "cicada" }); // returns at once
  // Inputs are a record of input name → { dtype, dims, data }: `data` is the typed array of `dtype`
  // (float32 → Float32Array, int64 → BigInt64Array, …) holding the dims' product of elements, row-major.
  const input = model.manifest.inputs[0]; // { name, dtype, shape, example: { shape } }
  const dims = input.example.shape; // a concrete shape (the manifest's `shape` may have symbolic dims)
  const data = new Float32Array(dims.reduce((n, d) => n * d, 1)).fill(0.5);
  const { outputs, cold } = await model.run({ [input.name]: { dtype: "float32", dims, data } });
  for (const [name, t] of Object.entries(outputs)) {
    console.log(`${name}: ${t.dtype} [${t.dims.join(", ")}] ${Array.from(t.data.slice(0, 4)).join(" ")}`);
  }
  console.log(cold ? "cold start" : "warm");
  await model.dispose(); // frees the model's sessions and buffers
} finally {
  await runtime.close(); // waits for background work, stops any worker: the process can exit
}
