// TypeScript shapes of the decoded ONNX messages (see onnx-schema.ts) and the element types we handle.
// Decoded int64 fields are plain numbers: dims and attributes never need more than 2^53, and the
// INT64_MAX/MIN sentinels PyTorch writes into Slice attributes round-trip because protobufjs clamps.

export interface StringStringEntry {
  key?: string;
  value?: string;
}

export interface OperatorSetId {
  domain?: string;
  version?: number;
}

export interface TensorProto {
  dims?: number[];
  dataType?: number;
  name?: string;
  docString?: string;
  rawData?: Uint8Array;
  floatData?: number[];
  int32Data?: number[];
  int64Data?: number[];
  doubleData?: number[];
  uint64Data?: number[];
  stringData?: Uint8Array[];
  externalData?: StringStringEntry[];
  dataLocation?: number;
  metadataProps?: StringStringEntry[];
}

export interface Dimension {
  dimValue?: number;
  dimParam?: string;
  denotation?: string;
}

export interface TypeProto {
  tensorType?: { elemType?: number; shape?: { dim?: Dimension[] } };
  sequenceType?: { elemType?: TypeProto };
  mapType?: { keyType?: number; valueType?: TypeProto };
  optionalType?: { elemType?: TypeProto };
  sparseTensorType?: { elemType?: number; shape?: { dim?: Dimension[] } };
  denotation?: string;
}

export interface ValueInfoProto {
  name?: string;
  type?: TypeProto;
  docString?: string;
}

export interface AttributeProto {
  name?: string;
  refAttrName?: string;
  type?: number;
  f?: number;
  i?: number;
  s?: Uint8Array;
  t?: TensorProto;
  g?: GraphProto;
  tp?: TypeProto;
  floats?: number[];
  ints?: number[];
  strings?: Uint8Array[];
  tensors?: TensorProto[];
  graphs?: GraphProto[];
  docString?: string;
}

export interface NodeProto {
  input?: string[];
  output?: string[];
  name?: string;
  opType?: string;
  domain?: string;
  attribute?: AttributeProto[];
  docString?: string;
}

export interface GraphProto {
  node?: NodeProto[];
  name?: string;
  initializer?: TensorProto[];
  sparseInitializer?: unknown[];
  docString?: string;
  input?: ValueInfoProto[];
  output?: ValueInfoProto[];
  valueInfo?: ValueInfoProto[];
}

export interface ModelProto {
  irVersion?: number;
  opsetImport?: OperatorSetId[];
  producerName?: string;
  producerVersion?: string;
  domain?: string;
  modelVersion?: number;
  docString?: string;
  graph?: GraphProto;
  metadataProps?: StringStringEntry[];
  trainingInfo?: unknown[];
  functions?: unknown[];
}

/** ONNX TensorProto.DataType values. */
export const DataType = {
  UNDEFINED: 0,
  FLOAT: 1,
  UINT8: 2,
  INT8: 3,
  UINT16: 4,
  INT16: 5,
  INT32: 6,
  INT64: 7,
  STRING: 8,
  BOOL: 9,
  FLOAT16: 10,
  DOUBLE: 11,
  UINT32: 12,
  UINT64: 13,
  BFLOAT16: 16,
} as const;

/** AttributeProto.AttributeType values. */
export const AttributeType = {
  FLOAT: 1,
  INT: 2,
  STRING: 3,
  TENSOR: 4,
  GRAPH: 5,
  FLOATS: 6,
  INTS: 7,
  STRINGS: 8,
  TENSORS: 9,
  GRAPHS: 10,
} as const;

/** Element types by name, as onnxruntime-node's Tensor names them. */
export type DTypeName =
  | "float32"
  | "float64"
  | "float16"
  | "bfloat16"
  | "int8"
  | "uint8"
  | "int16"
  | "uint16"
  | "int32"
  | "uint32"
  | "int64"
  | "uint64"
  | "bool"
  | "string";

const DTYPES: Record<number, { name: DTypeName; bytes: number }> = {
  [DataType.FLOAT]: { name: "float32", bytes: 4 },
  [DataType.UINT8]: { name: "uint8", bytes: 1 },
  [DataType.INT8]: { name: "int8", bytes: 1 },
  [DataType.UINT16]: { name: "uint16", bytes: 2 },
  [DataType.INT16]: { name: "int16", bytes: 2 },
  [DataType.INT32]: { name: "int32", bytes: 4 },
  [DataType.INT64]: { name: "int64", bytes: 8 },
  [DataType.STRING]: { name: "string", bytes: 0 },
  [DataType.BOOL]: { name: "bool", bytes: 1 },
  [DataType.FLOAT16]: { name: "float16", bytes: 2 },
  [DataType.DOUBLE]: { name: "float64", bytes: 8 },
  [DataType.UINT32]: { name: "uint32", bytes: 4 },
  [DataType.UINT64]: { name: "uint64", bytes: 8 },
  [DataType.BFLOAT16]: { name: "bfloat16", bytes: 2 },
};

/** The name of an ONNX element type, or undefined for types we do not handle (complex, float8, int4). */
export function dtypeName(dataType: number): DTypeName | undefined {
  return DTYPES[dataType]?.name;
}

/** The ONNX element type of a name. */
export function dtypeFromName(name: DTypeName): number {
  for (const [k, v] of Object.entries(DTYPES)) if (v.name === name) return Number(k);
  throw new Error(`unknown dtype ${name}`);
}

/** Bytes per element of an ONNX element type (0 for strings and unknown types). */
export function dtypeBytes(dataType: number): number {
  return DTYPES[dataType]?.bytes ?? 0;
}

/** Number of elements of a shape. */
export function numElements(dims: readonly number[]): number {
  let n = 1;
  for (const d of dims) n *= d;
  return n;
}

/** A metadata_props value of a model, if present. */
export function getMetadata(model: ModelProto, key: string): string | undefined {
  return model.metadataProps?.find((e) => e.key === key)?.value;
}
