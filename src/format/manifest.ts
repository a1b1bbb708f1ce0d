// The bundle manifest (manifest.json): what a bundle holds and how its stages fit together. It is the
// contract between the importer (which writes it) and the runtime (which trusts nothing it has not
// validated against this schema).
import { readFile } from "node:fs/promises";
import { join } from "node:path";
import { z } from "zod";
import { CicadaError } from "../errors.js";

export const MANIFEST_FILE = "manifest.json";
export const WEIGHTS_FILE = "weights.safetensors";
export const BUNDLE_FORMAT = "cicada-bundle";
export const BUNDLE_FORMAT_VERSION = 1;

/** Element types as onnxruntime-node names them. */
export const DTypeSchema = z.enum([
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
]);

/** A dimension: a size, or a symbolic name such as `batch`; null when unknown. */
const dim = z.union([z.number().int().nonnegative(), z.string().min(1), z.null()]);

/** A tensor crossing a boundary (graph or stage input/output). */
export const TensorSpecSchema = z.object({
  name: z.string().min(1),
  dtype: DTypeSchema,
  /** null when the rank is unknown (the source model did not say). */
  shape: z.array(dim).nullable(),
});

/** A graph input, with the example shape and value range a run without given inputs uses. */
export const GraphInputSchema = TensorSpecSchema.extend({
  example: z.object({
    shape: z.array(z.number().int().nonnegative()),
    range: z.tuple([z.number(), z.number()]),
  }),
});

/** A weight tensor of a stage: where its bytes are within the stage's weight range. */
export const StageTensorSchema = z.object({
  /** Initializer name in the stage graph. */
  name: z.string().min(1),
  /** Key in weights.safetensors (differs from `name` when a shared weight is duplicated). */
  key: z.string().min(1),
  dtype: DTypeSchema,
  shape: z.array(z.number().int().nonnegative()),
  /** Byte offset relative to the start of the stage's weight range. */
  offset: z.number().int().nonnegative(),
  length: z.number().int().nonnegative(),
});

export const StageSchema = z.object({
  index: z.number().int().nonnegative(),
  /** Structure graph, relative to the bundle: `stages/NNN.onnx`. */
  file: z.string().min(1),
  inputs: z.array(TensorSpecSchema),
  outputs: z.array(TensorSpecSchema).min(1),
  weights: z.object({
    /**
     * The external-data location the structure graph's initializers name; its bytes are the stage's range
     * of weights.safetensors, and offsets in the graph are relative to that range.
     */
    location: z.string().min(1),
    /** Absolute byte offset of the range in weights.safetensors (page aligned). */
    offset: z.number().int().nonnegative(),
    length: z.number().int().nonnegative(),
    /** `crc32:` and 8 hex digits, of the range's bytes. */
    checksum: z.string().regex(/^crc32:[0-9a-f]{8}$/),
  }),
  tensors: z.array(StageTensorSchema),
  nodeCount: z.number().int().nonnegative(),
  opCounts: z.record(z.string(), z.number().int().nonnegative()),
});

export const ManifestSchema = z.object({
  format: z.literal(BUNDLE_FORMAT),
  formatVersion: z.literal(BUNDLE_FORMAT_VERSION),
  model: z.object({
    name: z.string().min(1),
    family: z.string().nullable(),
    /** The .onnx file it was imported from (absolute path). */
    source: z.string(),
    irVersion: z.number().int(),
    opsetImport: z.array(z.object({ domain: z.string(), version: z.number().int() })),
    /** The source model's producer, e.g. `pytorch` or `cicada-zoo`. */
    producer: z.string(),
  }),
  inputs: z.array(GraphInputSchema).min(1),
  outputs: z.array(TensorSpecSchema).min(1),
  weightsFile: z.literal(WEIGHTS_FILE),
  totalWeightBytes: z.number().int().nonnegative(),
  stages: z.array(StageSchema).min(1),
  createdBy: z.string(),
});

export type TensorSpec = z.infer<typeof TensorSpecSchema>;
export type GraphInput = z.infer<typeof GraphInputSchema>;
export type StageTensor = z.infer<typeof StageTensorSchema>;
export type Stage = z.infer<typeof StageSchema>;
export type Manifest = z.infer<typeof ManifestSchema>;

/** Validates parsed JSON as a manifest; `source` names the file in errors. */
export function parseManifest(json: unknown, source: string): Manifest {
  const result = ManifestSchema.safeParse(json);
  if (!result.success) {
    const issue = result.error.issues[0]!;
    const field = issue.path.length ? issue.path.join(".") : "(root)";
    throw new CicadaError("E_BUNDLE_MANIFEST", `${source}: field '${field}': ${issue.message}`);
  }
  const m = result.data;
  m.stages.forEach((s, i) => {
    if (s.index !== i) {
      throw new CicadaError(
        "E_BUNDLE_MANIFEST",
        `${source}: field 'stages.${i}.index' is ${s.index}, expected ${i}`,
      );
    }
    for (const t of s.tensors) {
      if (t.offset + t.length > s.weights.length) {
        throw new CicadaError(
          "E_BUNDLE_MANIFEST",
          `${source}: tensor '${t.name}' of stage ${i} ends at ${t.offset + t.length}, past the stage's ${s.weights.length} weight bytes`,
        );
      }
    }
  });
  return m;
}

/** Reads and validates `<bundleDir>/manifest.json`. */
export async function readManifest(bundleDir: string): Promise<Manifest> {
  const path = join(bundleDir, MANIFEST_FILE);
  let text: string;
  try {
    text = await readFile(path, "utf8");
  } catch (e) {
    throw new CicadaError(
      "E_BUNDLE_MANIFEST",
      `${path}: cannot read the manifest (${(e as Error).message}); is ${bundleDir} a bundle?`,
      {
        cause: e,
      },
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
