// The handler files of `cicada bench --scenario process`: what a serverless function's fresh process runs.
// Each is a plain ES module run by plain `node`, written into a scratch project whose node_modules links
// the built package (by its public name, `cicada-node`) and onnxruntime-node:
// - cicada.mjs imports "cicada-node" and uses only its public API (createRuntime, loadModel, run);
// - eager.mjs and ort-best.mjs use onnxruntime-node alone, no project code: eager with default session
//   options on the original model; ort-best over a graph it optimised and saved itself in a `prepare` run
//   (outside the clock), loaded with optimisation disabled, no spinning and no prepacking.
// Each reads the request's inputs, imports its runtime, loads, runs, writes every output to files, then
// prints one line with its timestamps (epoch milliseconds, the clock of the harness too) and exits.
import { spawn } from "node:child_process";
import { readFileSync } from "node:fs";
import { mkdir, rm, symlink, writeFile } from "node:fs/promises";
import { createRequire } from "node:module";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { CicadaError } from "../errors.js";
import { typedArrayFor, type HostTensor } from "../runtime/host-tensor.js";

const clock = () => performance.timeOrigin + performance.now();

/** The handlers: `cicada` runs any strategy of the package; `eager` and `ort-best` are plain scripts. */
export const HANDLERS = ["cicada", "eager", "ort-best"] as const;
export type HandlerName = (typeof HANDLERS)[number];

/** What a handler is told (as JSON in argv[2]). */
export interface HandlerConfig {
  /** Bundle directory (cicada) or ONNX model file (eager, ort-best). */
  model: string;
  /** inputs.json: name → { dtype, dims, file } with the raw little-endian elements in `file`. */
  inputs: string;
  /** Directory the outputs are written into (created). */
  out: string;
  /** cicada: the strategy and plan. */
  strategy?: string;
  plan?: string;
  /** ort-best: the directory of its optimised graph (written by the prepare run). */
  optimised?: string;
  /** Prepare instead of serving: build cached forms (cicada) or the optimised graph (ort-best). */
  prepare?: boolean;
}

/** The line a handler prints once its outputs are written: its timestamps (epoch ms). */
export interface HandlerTimes {
  /** First line of the handler (after node's own start). */
  start: number;
  /** Inputs read. */
  inputs: number;
  /** The runtime's module imported. */
  imported: number;
  /** cicada: createRuntime resolved (the plain scripts: = imported). */
  runtime: number;
  /** cicada: loadModel returned (it keeps loading during the run); plain: InferenceSession.create resolved. */
  loaded: number;
  /** The first request's outputs are in hand. */
  ran: number;
  /** Outputs written to files. */
  written: number;
}

const COMMON = `
import { existsSync, mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
const clock = () => performance.timeOrigin + performance.now();
const t = { start: clock() };
const config = JSON.parse(process.argv[2]);
const ARRAYS = { float32: Float32Array, float64: Float64Array, int8: Int8Array, uint8: Uint8Array,
  bool: Uint8Array, int16: Int16Array, uint16: Uint16Array, float16: Uint16Array, bfloat16: Uint16Array,
  int32: Int32Array, uint32: Uint32Array, int64: BigInt64Array, uint64: BigUint64Array };
function readInputs(path) {
  const inputs = {};
  for (const [name, s] of Object.entries(JSON.parse(readFileSync(path, "utf8")))) {
    const bytes = new Uint8Array(readFileSync(s.file)); // a copy: aligned for any element size
    const A = ARRAYS[s.dtype];
    inputs[name] = { dtype: s.dtype, dims: s.dims, data: new A(bytes.buffer, 0, bytes.byteLength / A.BYTES_PER_ELEMENT) };
  }
  return inputs;
}
function writeOutputs(outputs) {
  mkdirSync(config.out, { recursive: true });
  const meta = {};
  Object.entries(outputs).forEach(([name, o], i) => {
    const file = join(config.out, i + ".bin");
    writeFileSync(file, new Uint8Array(o.data.buffer, o.data.byteOffset, o.data.byteLength));
    meta[name] = { dtype: o.type ?? o.dtype, dims: Array.from(o.dims, Number), file };
  });
  writeFileSync(join(config.out, "outputs.json"), JSON.stringify(meta));
}
function done() {
  t.written = clock();
  process.stdout.write(JSON.stringify({ kind: "output", times: t }) + "\\n");
}
`;

const CICADA = `// A serverless handler on cicada-node's public API (cicada bench --scenario process).
${COMMON}
if (config.prepare) {
  const { createRuntime, prepareModel, filesRead } = await import("cicada-node");
  const runtime = await createRuntime();
  await prepareModel(runtime, config.model, config.strategy);
  const files = {
    [config.strategy]: await filesRead(runtime, config.model, config.strategy, config.plan ?? "auto"),
    eager: await filesRead(runtime, config.model, "eager"),
  };
  process.stdout.write(JSON.stringify({ kind: "prepared", files }) + "\\n");
  await runtime.close();
} else {
  const inputs = readInputs(config.inputs);
  t.inputs = clock();
  const { createRuntime, loadModel } = await import("cicada-node");
  t.imported = clock();
  const runtime = await createRuntime();
  t.runtime = clock();
  const model = await loadModel(runtime, config.model, { strategy: config.strategy, plan: config.plan ?? "auto" });
  t.loaded = clock();
  const { outputs } = await model.run(inputs);
  t.ran = clock();
  writeOutputs(outputs);
  done();
  await model.dispose();
  await runtime.close();
}
`;

const EAGER = `// Plain onnxruntime-node with default session options: what a Node.js user writes (no project code).
${COMMON}
const inputs = readInputs(config.inputs);
t.inputs = clock();
const ort = await import("onnxruntime-node");
t.imported = t.runtime = clock();
const session = await ort.InferenceSession.create(config.model);
t.loaded = clock();
const feeds = Object.fromEntries(Object.entries(inputs).map(([n, x]) => [n, new ort.Tensor(x.dtype, x.data, x.dims)]));
const outputs = await session.run(feeds);
t.ran = clock();
writeOutputs(outputs);
done();
await session.release();
`;

const ORT_BEST = `// Plain onnxruntime-node at its best for a cold start (no project code): the model optimised once and
// saved with external weights (the prepare run), then loaded with optimisation disabled, no spinning and
// no prepacking.
${COMMON}
const OPTIMISED = config.optimised;
if (config.prepare) {
  const ort = await import("onnxruntime-node");
  mkdirSync(OPTIMISED, { recursive: true });
  const session = await ort.InferenceSession.create(config.model, {
    graphOptimizationLevel: "all",
    optimizedModelFilePath: join(OPTIMISED, "model.onnx"),
    logSeverityLevel: 3,
    extra: { session: { optimized_model_external_initializers_file_name: "model.data",
      optimized_model_external_initializers_min_size_in_bytes: "1024" } },
  });
  await session.release();
  const files = [join(OPTIMISED, "model.onnx"), join(OPTIMISED, "model.data")];
  if (!existsSync(files[1])) writeFileSync(files[1], new Uint8Array(0)); // all weights inline
  process.stdout.write(JSON.stringify({ kind: "prepared", files: { "ort-best": files } }) + "\\n");
} else {
  const inputs = readInputs(config.inputs);
  t.inputs = clock();
  const ort = await import("onnxruntime-node");
  t.imported = t.runtime = clock();
  const session = await ort.InferenceSession.create(join(OPTIMISED, "model.onnx"), {
    graphOptimizationLevel: "disabled",
    extra: { session: { intra_op: { allow_spinning: "0" }, inter_op: { allow_spinning: "0" }, disable_prepacking: "1" } },
  });
  t.loaded = clock();
  const feeds = Object.fromEntries(Object.entries(inputs).map(([n, x]) => [n, new ort.Tensor(x.dtype, x.data, x.dims)]));
  const outputs = await session.run(feeds);
  t.ran = clock();
  writeOutputs(outputs);
  done();
  await session.release();
}
`;

/** The source of each handler file. */
export const HANDLER_SOURCES: Record<HandlerName, string> = {
  cicada: CICADA,
  eager: EAGER,
  "ort-best": ORT_BEST,
};

/** The root of this package (where its package.json is), as installed or checked out. */
export function packageRoot(): string {
  return dirname(dirname(dirname(fileURLToPath(import.meta.url))));
}

/**
 * Writes the handler files into `dir` (created) with a node_modules that links `cicada-node` to the
 * package root (its `exports`, the built dist/) and onnxruntime-node to the copy this package resolves.
 * Returns each handler's path.
 */
export async function writeScratchProject(dir: string): Promise<Record<HandlerName, string>> {
  await mkdir(join(dir, "node_modules"), { recursive: true });
  await writeFile(join(dir, "package.json"), JSON.stringify({ private: true, type: "module" }) + "\n");
  const require = createRequire(import.meta.url);
  const ort = dirname(require.resolve("onnxruntime-node/package.json"));
  for (const [name, target] of [
    ["cicada-node", packageRoot()],
    ["onnxruntime-node", ort],
  ] as const) {
    await rm(join(dir, "node_modules", name), { force: true });
    await symlink(target, join(dir, "node_modules", name), "dir");
  }
  const paths = {} as Record<HandlerName, string>;
  for (const name of HANDLERS) {
    paths[name] = join(dir, `${name}.mjs`);
    await writeFile(paths[name], HANDLER_SOURCES[name]);
  }
  return paths;
}

/** A handler process that ran to its exit: when it started, printed and exited (epoch ms), and its lines. */
export interface Spawned {
  firstOutputAt: number;
  exitAt: number;
  spawnAt: number;
  lines: { kind: string; times?: HandlerTimes; files?: Record<string, string[]> }[];
}

/** Runs one handler process to its exit; E_RUNTIME with its stderr if it fails or times out. */
export function runHandler(
  path: string,
  config: HandlerConfig,
  cwd: string,
  env: NodeJS.ProcessEnv,
  timeoutMs: number,
) {
  return new Promise<Spawned>((resolve, reject) => {
    const spawnAt = clock();
    const child = spawn(process.execPath, [path, JSON.stringify(config)], {
      cwd,
      env,
      stdio: ["ignore", "pipe", "pipe"],
    });
    let stdout = "";
    let stderr = "";
    let firstOutputAt = NaN;
    child.stdout.on("data", (d: Buffer) => {
      stdout += d.toString();
      if (Number.isNaN(firstOutputAt) && stdout.includes("\n")) firstOutputAt = clock();
    });
    child.stderr.on("data", (d: Buffer) => (stderr = (stderr + d.toString()).slice(-4000)));
    const timer = setTimeout(() => child.kill("SIGKILL"), timeoutMs);
    child.once("error", reject);
    child.once("exit", (code, signal) => {
      const exitAt = clock();
      clearTimeout(timer);
      if (code !== 0) {
        const how = signal
          ? `was killed (${signal}${signal === "SIGKILL" ? `, timeout ${timeoutMs} ms` : ""})`
          : `exited ${code}`;
        reject(new CicadaError("E_RUNTIME", `bench handler ${path} ${how}; stderr:\n${stderr}`));
        return;
      }
      try {
        const lines = stdout
          .trim()
          .split("\n")
          .filter(Boolean)
          .map((l) => JSON.parse(l) as Spawned["lines"][number]);
        resolve({ firstOutputAt, exitAt, spawnAt, lines });
      } catch {
        reject(
          new CicadaError("E_RUNTIME", `bench handler ${path} printed what is not JSON lines:\n${stdout}`),
        );
      }
    });
  });
}

/** Writes the request's inputs as inputs.json + raw files, as the handlers read them. */
export async function writeInputs(dir: string, inputs: Record<string, HostTensor>): Promise<string> {
  await mkdir(dir, { recursive: true });
  const spec: Record<string, { dtype: string; dims: number[]; file: string }> = {};
  for (const [i, [name, t]] of Object.entries(inputs).entries()) {
    const file = join(dir, `${i}.bin`);
    await writeFile(file, new Uint8Array(t.data.buffer, t.data.byteOffset, t.data.byteLength));
    spec[name] = { dtype: t.dtype, dims: t.dims, file };
  }
  await writeFile(join(dir, "inputs.json"), JSON.stringify(spec));
  return join(dir, "inputs.json");
}

/** Reads the outputs a handler wrote. */
export function readOutputs(dir: string): Record<string, HostTensor> {
  const meta = JSON.parse(readFileSync(join(dir, "outputs.json"), "utf8")) as Record<
    string,
    { dtype: HostTensor["dtype"]; dims: number[]; file: string }
  >;
  const out: Record<string, HostTensor> = {};
  for (const [name, m] of Object.entries(meta)) {
    const bytes = readFileSync(m.file);
    const A = typedArrayFor(m.dtype);
    const data = new A(bytes.byteLength / A.BYTES_PER_ELEMENT);
    new Uint8Array(data.buffer).set(bytes);
    out[name] = { dtype: m.dtype, dims: m.dims, data };
  }
  return out;
}
