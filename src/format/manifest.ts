// The bundle manifest (manifest.json): what a bundle holds and how its stages fit together. It is the
// contract between the importer (which writes it) and the runtime (which trusts nothing it has not
// validated here). The validator is written out by hand rather than with a schema library: it runs on
// every cold start (a schema library cost ~60 ms of import there), and it bounds what a hostile manifest
// can make the runtime allocate (counts, string lengths, shapes) before anything is built from it.
import { readFile, stat } from "node:fs/promises";
import { join } from "node:path";
import { CicadaError } from "../errors.js";
import { field, type Check } from "./manifest-check.js";

export const MANIFEST_FILE = "manifest.json";
export const WEIGHTS_FILE = "weights.safetensors";
export const BUNDLE_FORMAT = "cicada-bundle";
/**
 * 3: stage graphs carry a checksum (`stages[].fileChecksum`, since 2) and so does the source model
 * (`model.sourceChecksum`); older bundles are refused with E_BUNDLE_VERSION.
 */
export const BUNDLE_FORMAT_VERSION = 3;

/** Bounds on what a manifest may describe; a manifest past one is refused with E_BUNDLE_LIMIT. */
export const MANIFEST_LIMITS = {
  /** manifest.json's size. */
  fileBytes: 64 * 2 ** 20,
  stages: 4096,
  /** Tensors (weights, inputs, outputs) of one stage. */
  tensorsPerStage: 100_000,
  /** Graph inputs and outputs. */
  graphTensors: 4096,
  /** Any name or path. */
  stringLength: 4096,
  rank: 32,
  /** Elements of an example input (what a run without given inputs allocates). */
  exampleElements: 2 ** 28,
} as const;

/** Element types as onnxruntime-node names them. */
export const DTYPES = [
  "float32",
  "float64",
  "float16",
  "bfloat16",
  "int8",
  "uint8",
  "int16",
  "uint16",
  "int32",
  "uint32",
  "int64",
  "uint64",
  "bool",
  "string",
] as const;
export type DType = (typeof DTYPES)[number];

/** A dimension: a size, or a symbolic name such as `batch`; null when unknown. */
export type Dim = number | string | null;

/** A tensor crossing a boundary (graph or stage input/output). */
export interface TensorSpec {
  name: string;
  dtype: DType;
  /** null when the rank is unknown (the source model did not say). */
  shape: Dim[] | null;
}

/** A graph input, with the example shape and value range a run without given inputs uses. */
export interface GraphInput extends TensorSpec {
  example: { shape: number[]; range: [number, number] };
}

/** A weight tensor of a stage: where its bytes are within the stage's weight range. */
export interface StageTensor {
  /** Initializer name in the stage graph. */
  name: string;
  /** Key in weights.safetensors (differs from `name` when a shared weight is duplicated). */
  key: string;
  dtype: DType;
  shape: number[];
  /** Byte offset relative to the start of the stage's weight range. */
  offset: number;
  length: number;
}

export interface Stage {
  index: number;
  /** Structure graph, relative to the bundle: `stages/NNN.onnx`. */
  file: string;
  /** Size of the structure graph file. */
  fileBytes: number;
  /** `sha256:` and 64 hex digits, of the structure graph file. */
  fileChecksum: string;
  inputs: TensorSpec[];
  outputs: TensorSpec[];
  weights: {
    /**
     * The external-data location the structure graph's initializers name (a plain file name, given in
     * memory at load time); its bytes are the stage's range of weights.safetensors, and offsets in the
     * graph are relative to that range.
     */
    location: string;
    /** Absolute byte offset of the range in weights.safetensors (page aligned). */
    offset: number;
    length: number;
    /** `crc32:` and 8 hex digits, of the range's bytes. */
    checksum: string;
  };
  tensors: StageTensor[];
  nodeCount: number;
  opCounts: Record<string, number>;
}

export interface Manifest {
  format: typeof BUNDLE_FORMAT;
  formatVersion: typeof BUNDLE_FORMAT_VERSION;
  model: {
    name: string;
    family: string | null;
    /** The .onnx file it was imported from (absolute path; eager and ort-best run it). */
    source: string;
    /** Size and sha256 of that file at import: eager and ort-best run it only while it still matches. */
    sourceBytes: number;
    sourceChecksum: string;
    irVersion: number;
    opsetImport: { domain: string; version: number }[];
    /** The source model's producer, e.g. `pytorch` or `cicada-zoo`. */
    producer: string;
  };
  inputs: GraphInput[];
  outputs: TensorSpec[];
  weightsFile: typeof WEIGHTS_FILE;
  totalWeightBytes: number;
  stages: Stage[];
  createdBy: string;
}

const CRC32 = /^crc32:[0-9a-f]{8}$/;
const SHA256 = /^sha256:[0-9a-f]{64}$/;
/** A stage file: relative, forward slashes, no `.`/`..` segments, ending in .onnx. */
const STAGE_FILE = /^(?:[A-Za-z0-9_-][A-Za-z0-9._-]*\/)*[A-Za-z0-9_-][A-Za-z0-9._-]*\.onnx$/;
/** An external-data location: one plain file name. */
const LOCATION = /^[A-Za-z0-9_-][A-Za-z0-9._-]*$/;

function tensorSpec(c: Check): TensorSpec {
  const dims = c
    .get("shape")
    .nullable((s) => s.array(MANIFEST_LIMITS.rank, (d) => d.oneOf<Dim>(["size", "string", "null"])));
  return { name: c.get("name").string(), dtype: c.get("dtype").enumOf(DTYPES), shape: dims };
}

function graphInput(c: Check): GraphInput {
  const spec = tensorSpec(c);
  const ex = c.get("example");
  const shape = ex.get("shape").array(MANIFEST_LIMITS.rank, (d) => d.size());
  const elements = shape.reduce((n, d) => n * d, 1);
  if (elements > MANIFEST_LIMITS.exampleElements) {
    ex.get("shape").fail(
      `has ${elements} elements, more than the ${MANIFEST_LIMITS.exampleElements} a bundle may ask for`,
      "E_BUNDLE_LIMIT",
    );
  }
  const range = ex.get("range").array(2, (d) => d.finite());
  if (range.length !== 2) ex.get("range").fail(`has ${range.length} numbers, expected 2`);
  return { ...spec, example: { shape, range: [range[0]!, range[1]!] } };
}

function stageTensor(c: Check): StageTensor {
  return {
    name: c.get("name").string(),
    key: c.get("key").string(),
    dtype: c.get("dtype").enumOf(DTYPES),
    shape: c.get("shape").array(MANIFEST_LIMITS.rank, (d) => d.size()),
    offset: c.get("offset").size(),
    length: c.get("length").size(),
  };
}

function stage(c: Check): Stage {
  const t = MANIFEST_LIMITS.tensorsPerStage;
  const w = c.get("weights");
  const ops = c.get("opCounts").record(t, (n) => n.size());
  return {
    index: c.get("index").size(),
    file: c.get("file").matching(STAGE_FILE, "a relative path inside the bundle ending in .onnx"),
    fileBytes: c.get("fileBytes").size(),
    fileChecksum: c.get("fileChecksum").matching(SHA256, "sha256: and 64 hex digits"),
    inputs: c.get("inputs").array(t, tensorSpec),
    outputs: c.get("outputs").array(t, tensorSpec, 1),
    weights: {
      location: w.get("location").matching(LOCATION, "a plain file name"),
      offset: w.get("offset").size(),
      length: w.get("length").size(),
      checksum: w.get("checksum").matching(CRC32, "crc32: and 8 hex digits"),
    },
    tensors: c.get("tensors").array(t, stageTensor),
    nodeCount: c.get("nodeCount").size(),
    opCounts: ops,
  };
}

function manifestOf(root: Check): Manifest {
  const version = root.get("formatVersion");
  root.get("format").literal(BUNDLE_FORMAT);
  if (version.value !== BUNDLE_FORMAT_VERSION) {
    version.fail(
      `is ${JSON.stringify(version.value)}: this runtime reads bundle format ${BUNDLE_FORMAT_VERSION}; import the model again (cicada import MODEL.onnx --out DIR)`,
      "E_BUNDLE_VERSION",
    );
  }
  const m = root.get("model");
  const g = MANIFEST_LIMITS.graphTensors;
  return {
    format: BUNDLE_FORMAT,
    formatVersion: BUNDLE_FORMAT_VERSION,
    model: {
      name: m.get("name").string(),
      family: m.get("family").nullable((f) => f.string()),
      source: m.get("source").string(0),
      sourceBytes: m.get("sourceBytes").size(),
      sourceChecksum: m.get("sourceChecksum").matching(SHA256, "sha256: and 64 hex digits"),
      irVersion: m.get("irVersion").integer(),
      opsetImport: m.get("opsetImport").array(g, (o) => ({
        domain: o.get("domain").string(0),
        version: o.get("version").integer(),
      })),
      producer: m.get("producer").string(0),
    },
    inputs: root.get("inputs").array(g, graphInput, 1),
    outputs: root.get("outputs").array(g, tensorSpec, 1),
    weightsFile: root.get("weightsFile").literal(WEIGHTS_FILE),
    totalWeightBytes: root.get("totalWeightBytes").size(),
    stages: root.get("stages").array(MANIFEST_LIMITS.stages, stage, 1),
    createdBy: root.get("createdBy").string(0),
  };
}

/** Checks that the stages fit together: indices in order, tensors inside their ranges, every tensor read is produced. */
function checkConsistency(m: Manifest, source: string): void {
  const fail = (path: string, message: string): never => {
    throw new CicadaError("E_BUNDLE_MANIFEST", `${source}: field '${path}' ${message}`);
  };
  const available = new Set(m.inputs.map((i) => i.name));
  m.stages.forEach((s, i) => {
    if (s.index !== i) fail(`stages.${i}.index`, `is ${s.index}, expected ${i}`);
    s.tensors.forEach((t, k) => {
      if (t.offset + t.length > s.weights.length) {
        fail(
          `stages.${i}.tensors.${k}`,
          `('${t.name}') ends at ${t.offset + t.length}, past the stage's ${s.weights.length} weight bytes`,
        );
      }
    });
    s.inputs.forEach((t, k) => {
      if (!available.has(t.name))
        fail(
          `stages.${i}.inputs.${k}`,
          `('${t.name}') is neither a graph input nor an earlier stage's output`,
        );
    });
    for (const o of s.outputs) available.add(o.name);
  });
  m.outputs.forEach((o, k) => {
    if (!available.has(o.name)) fail(`outputs.${k}`, `('${o.name}') is not an output of any stage`);
  });
}

/** Validates parsed JSON as a manifest; `source` names the file in errors. */
export function parseManifest(json: unknown, source: string): Manifest {
  const manifest = manifestOf(field(json, source, MANIFEST_LIMITS.stringLength));
  checkConsistency(manifest, source);
  return manifest;
}

/** Reads and validates `<bundleDir>/manifest.json` (bounded in size before it is read). */
export async function readManifest(bundleDir: string): Promise<Manifest> {
  const path = join(bundleDir, MANIFEST_FILE);
  let text: string;
  try {
    const info = await stat(path);
    if (!info.isFile()) throw new Error("not a regular file");
    if (info.size > MANIFEST_LIMITS.fileBytes) {
      throw new CicadaError(
        "E_BUNDLE_LIMIT",
        `${path} has ${info.size} bytes, more than the ${MANIFEST_LIMITS.fileBytes} a manifest may have`,
      );
    }
    text = await readFile(path, "utf8");
  } catch (e) {
    if (e instanceof CicadaError) throw e;
    throw new CicadaError(
      "E_BUNDLE_MANIFEST",
      `${path}: cannot read the manifest (${(e as Error).message}); is ${bundleDir} a bundle?`,
      { cause: e },
    );
  }
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch (e) {
    throw new CicadaError("E_BUNDLE_MANIFEST", `${path}: not valid JSON (${(e as Error).message})`, {
      cause: e,
    });
  }
  return parseManifest(json, path);
}
