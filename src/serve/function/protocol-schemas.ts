// The Open Inference Protocol (KServe v2) as this server speaks it: datatype names, the request bodies it
// accepts (zod schemas), the bounds on a tensor's shape, and the one way a schema failure becomes an error
// naming the field. Everything a client sends is checked here before it reaches the model host.
import { z } from "zod";
import { CicadaError } from "../../errors.js";
import { MAX_INPUT_ELEMENTS, MAX_RANK } from "../../runtime/tensor-json.js";
import type { DTypeName } from "../../format/onnx-types.js";
import type { TensorSpec } from "../../format/manifest.js";

/** The protocol's tensor datatypes, by our element type names. */
export const DATATYPE_OF: Record<DTypeName, string> = {
  bool: "BOOL",
  uint8: "UINT8",
  uint16: "UINT16",
  uint32: "UINT32",
  uint64: "UINT64",
  int8: "INT8",
  int16: "INT16",
  int32: "INT32",
  int64: "INT64",
  float16: "FP16",
  bfloat16: "BF16",
  float32: "FP32",
  float64: "FP64",
  string: "BYTES",
};

const DTYPE_OF = new Map(
  Object.entries(DATATYPE_OF).map(([dtype, datatype]) => [datatype, dtype as DTypeName]),
);

/** Our element type of a protocol datatype, or undefined for a name the protocol does not have. */
export function dtypeOfDatatype(datatype: string): DTypeName | undefined {
  return DTYPE_OF.get(datatype);
}

/** Most dimensions an input tensor may have (the runtime's bound, tensor-json.ts). */
export const MAX_TENSOR_RANK: number = MAX_RANK;
/** Most elements an input tensor may have (each dimension too); past it, E_INPUT_LIMIT (413). */
export { MAX_INPUT_ELEMENTS };

/** Protocol parameters: the protocol allows only scalar values. */
export const ParametersSchema = z.record(z.string(), z.union([z.string(), z.number(), z.boolean()]));
export type Parameters = z.infer<typeof ParametersSchema>;

/** `$request_input`: data is JSON (flat or nested, row-major) or, with `binary_data_size`, binary. */
export const RequestInputSchema = z.object({
  name: z.string().min(1),
  shape: z.array(z.number().int().nonnegative()),
  datatype: z.string().min(1),
  parameters: ParametersSchema.optional(),
  data: z.unknown().optional(),
});

/** `$request_output`: an output to return, as JSON or (`binary_data: true`) binary. */
export const RequestOutputSchema = z.object({
  name: z.string().min(1),
  parameters: ParametersSchema.optional(),
});

/** `$inference_request`. */
export const InferRequestSchema = z.object({
  id: z.string().optional(),
  parameters: ParametersSchema.optional(),
  inputs: z.array(RequestInputSchema).min(1),
  outputs: z.array(RequestOutputSchema).optional(),
});
export type InferRequest = z.infer<typeof InferRequestSchema>;

/** Body of `POST /v2/repository/index` (may be empty). */
export const RepositoryIndexSchema = z.object({ ready: z.boolean().optional() });

/** Body of `POST /v2/repository/models/{name}/load` (may be empty): `parameters.strategy` overrides. */
export const RepositoryLoadSchema = z.object({ parameters: ParametersSchema.optional() });

/** Parses `json` with `schema`, or throws E_REQUEST naming the first bad field and what was expected. */
export function parseOrThrow<T>(schema: z.ZodType<T>, json: unknown, what: string): T {
  const parsed = schema.safeParse(json);
  if (parsed.success) return parsed.data;
  const issue = parsed.error.issues[0]!;
  const field = issue.path.length ? issue.path.join(".") : "(root)";
  throw new CicadaError("E_REQUEST", `${what}: field '${field}': ${issue.message}`);
}

/** `$metadata_tensor` of a model input or output: symbolic and unknown dims are -1. */
export function tensorMetadata(spec: TensorSpec): { name: string; datatype: string; shape: number[] } {
  // NOTE: a tensor whose rank the source model did not declare (shape null) is shown as [-1].
  const shape = spec.shape ? spec.shape.map((d) => (typeof d === "number" ? d : -1)) : [-1];
  return { name: spec.name, datatype: DATATYPE_OF[spec.dtype], shape };
}

/** A short description of a client's value for an error message (never the whole of a large one). */
export function preview(v: unknown): string {
  if (Array.isArray(v)) return `an array of ${v.length}`;
  if (v === null) return "null";
  if (typeof v === "object") return "an object";
  if (typeof v === "string") return JSON.stringify(v.length > 40 ? `${v.slice(0, 40)}…` : v);
  return typeof v === "number" || typeof v === "boolean" ? String(v) : typeof v;
}

/**
 * The element count of `shape`, checked against the limits (E_INPUT_LIMIT) before anything trusts it; the
 * dims are non-negative safe integers already (the schema).
 */
export function elementsOf(shape: readonly number[], field: string): number {
  if (shape.length > MAX_TENSOR_RANK) {
    throw new CicadaError(
      "E_INPUT_LIMIT",
      `field '${field}': ${shape.length} dimensions, more than the server's limit of ${MAX_TENSOR_RANK}`,
    );
  }
  let elements = 1;
  shape.forEach((d, i) => {
    if (d > MAX_INPUT_ELEMENTS) {
      throw new CicadaError(
        "E_INPUT_LIMIT",
        `field '${field}.${i}': dimension ${d} is larger than the server's limit of ${MAX_INPUT_ELEMENTS} elements`,
      );
    }
    elements *= d;
  });
  if (elements > MAX_INPUT_ELEMENTS) {
    throw new CicadaError(
      "E_INPUT_LIMIT",
      `field '${field}': shape [${shape.join(",")}] has ${elements} elements, more than the server's limit of ${MAX_INPUT_ELEMENTS}`,
    );
  }
  return elements;
}
