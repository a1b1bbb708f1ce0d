// Reading and writing ONNX ModelProto files with protobufjs, and reaching a tensor's bytes wherever the
// model keeps them: raw_data, the typed repeated fields, or an external-data file beside the model.
import protobuf from "protobufjs";
import { open, readFile, stat } from "node:fs/promises";
import { dirname, isAbsolute, join, normalize } from "node:path";
import { CicadaError } from "../errors.js";
import { ONNX_DESCRIPTOR } from "./onnx-schema.js";
import { DataType, dtypeBytes, numElements, type ModelProto, type TensorProto } from "./onnx-types.js";
import { writeFileAtomic } from "./atomic-output.js";
import { sha256Of } from "./checksum.js";

const root = protobuf.Root.fromJSON(ONNX_DESCRIPTOR);
const ModelType = root.lookupType("onnx.ModelProto");
const TensorType = root.lookupType("onnx.TensorProto");

const TO_OBJECT: protobuf.IConversionOptions = {
  longs: Number,
  enums: Number,
  defaults: false,
  arrays: false,
};

/** Decodes ONNX model bytes; `source` names the file in errors. */
export function decodeModel(bytes: Uint8Array, source = "<buffer>"): ModelProto {
  let model: ModelProto;
  try {
    model = ModelType.toObject(ModelType.decode(bytes), TO_OBJECT);
  } catch (e) {
    throw new CicadaError(
      "E_ONNX_PARSE",
      `${source} is not a valid ONNX model (protobuf decode failed: ${(e as Error).message}); is the file truncated?`,
      { cause: e },
    );
  }
  if (!model.graph || !model.opsetImport?.length || model.irVersion === undefined) {
    const missing = !model.graph ? "graph" : model.irVersion === undefined ? "ir_version" : "opset_import";
    throw new CicadaError(
      "E_ONNX_PARSE",
      `${source} is not a valid ONNX model: ModelProto.${missing} is missing (found ${bytes.length} bytes)`,
    );
  }
  return model;
}

/** Encodes a model to ONNX bytes. Weights must be external when the result would pass protobuf's 2 GiB. */
export function encodeModel(model: ModelProto): Uint8Array {
  return ModelType.encode(ModelType.fromObject(model)).finish();
}

/** Encodes one TensorProto (used where a tensor is written outside a model, e.g. test fixtures). */
export function encodeTensor(tensor: TensorProto): Uint8Array {
  return TensorType.encode(TensorType.fromObject(tensor)).finish();
}

/** A model read from disk, with the directory its external-data paths are relative to. */
export interface OnnxFile {
  path: string;
  dir: string;
  model: ModelProto;
  /** Size of the .onnx file itself. */
  fileBytes: number;
  /** sha256 of the .onnx file itself (`sha256:` and 64 hex digits). */
  fileChecksum: string;
}

/** Reads and decodes an .onnx file; weights in external files stay on disk until asked for. */
export async function readOnnxFile(path: string): Promise<OnnxFile> {
  let bytes: Buffer;
  try {
    bytes = await readFile(path);
  } catch (e) {
    throw new CicadaError("E_ONNX_PARSE", `cannot read ONNX file ${path}: ${(e as Error).message}`, {
      cause: e,
    });
  }
  const model = decodeModel(bytes, path);
  return { path, dir: dirname(path), model, fileBytes: bytes.length, fileChecksum: sha256Of(bytes) };
}

/** Writes a model to `path` atomically. */
export async function writeOnnxFile(path: string, model: ModelProto): Promise<void> {
  await writeFileAtomic(path, encodeModel(model));
}

/** Where an external tensor's bytes live. */
export interface ExternalLocation {
  location: string;
  offset: number;
  length: number;
}

/** True if the tensor keeps its data in an external file. */
export function isExternal(t: TensorProto): boolean {
  return t.dataLocation === 1;
}

/** The byte size a tensor's data has, from its dims and element type (0 for strings). */
export function tensorByteSize(t: TensorProto): number {
  return numElements(t.dims ?? []) * dtypeBytes(t.dataType ?? 0);
}

/** The external-data entry of a tensor, validated. */
export function externalLocation(t: TensorProto, source: string): ExternalLocation {
  const get = (k: string) => t.externalData?.find((e) => e.key === k)?.value;
  const location = get("location");
  if (!location) {
    throw new CicadaError(
      "E_ONNX_EXTERNAL_DATA",
      `${source}: tensor '${t.name}' is external but has no 'location' entry`,
    );
  }
  const offset = Number(get("offset") ?? 0);
  const length = Number(get("length") ?? tensorByteSize(t));
  if (!Number.isSafeInteger(offset) || offset < 0 || !Number.isSafeInteger(length) || length < 0) {
    throw new CicadaError(
      "E_ONNX_EXTERNAL_DATA",
      `${source}: tensor '${t.name}' has a bad external offset/length (${get("offset")}/${get("length")})`,
    );
  }
  if (isAbsolute(location) || normalize(location).startsWith("..")) {
    throw new CicadaError(
      "E_ONNX_EXTERNAL_DATA",
      `${source}: tensor '${t.name}' points outside the model directory (location '${location}')`,
    );
  }
  return { location, offset, length };
}

/** Sets a tensor's data to an external-file range (and drops any inline data). */
export function setExternal(t: TensorProto, loc: ExternalLocation): void {
  delete t.rawData;
  delete t.floatData;
  delete t.int32Data;
  delete t.int64Data;
  delete t.doubleData;
  delete t.uint64Data;
  t.dataLocation = 1;
  t.externalData = [
    { key: "location", value: loc.location },
    { key: "offset", value: String(loc.offset) },
    { key: "length", value: String(loc.length) },
  ];
}

/** Reads little-endian tensor bytes out of the typed repeated fields. */
function typedFieldBytes(t: TensorProto): Uint8Array | undefined {
  const n = numElements(t.dims ?? []);
  const type = t.dataType ?? 0;
  const out = new Uint8Array(n * dtypeBytes(type));
  const view = new DataView(out.buffer);
  const fill = (src: number[] | undefined, put: (i: number, v: number) => void) => {
    if (!src) return false;
    for (let i = 0; i < n; i++) put(i, src[i] ?? 0);
    return true;
  };
  switch (type) {
    case DataType.FLOAT:
      return fill(t.floatData, (i, v) => view.setFloat32(i * 4, v, true)) ? out : undefined;
    case DataType.DOUBLE:
      return fill(t.doubleData, (i, v) => view.setFloat64(i * 8, v, true)) ? out : undefined;
    case DataType.INT64:
      return fill(t.int64Data, (i, v) => view.setBigInt64(i * 8, BigInt(v), true)) ? out : undefined;
    case DataType.UINT64:
    case DataType.UINT32:
      if (type === DataType.UINT32)
        return fill(t.uint64Data, (i, v) => view.setUint32(i * 4, v, true)) ? out : undefined;
      return fill(t.uint64Data, (i, v) => view.setBigUint64(i * 8, BigInt(v), true)) ? out : undefined;
    case DataType.INT32:
      return fill(t.int32Data, (i, v) => view.setInt32(i * 4, v, true)) ? out : undefined;
    case DataType.INT16:
      return fill(t.int32Data, (i, v) => view.setInt16(i * 2, v, true)) ? out : undefined;
    case DataType.UINT16:
    case DataType.FLOAT16:
    case DataType.BFLOAT16:
      return fill(t.int32Data, (i, v) => view.setUint16(i * 2, v, true)) ? out : undefined;
    case DataType.INT8:
      return fill(t.int32Data, (i, v) => view.setInt8(i, v)) ? out : undefined;
    case DataType.UINT8:
    case DataType.BOOL:
      return fill(t.int32Data, (i, v) => view.setUint8(i, v)) ? out : undefined;
    default:
      return undefined;
  }
}

/**
 * The tensor's data as little-endian bytes, wherever it is stored. External data is read from the file
 * named by its location, relative to `modelDir`; a missing or short file is an E_ONNX_EXTERNAL_DATA error.
 */
export async function tensorData(t: TensorProto, modelDir: string, source: string): Promise<Uint8Array> {
  if (isExternal(t)) {
    const loc = externalLocation(t, source);
    const file = join(modelDir, loc.location);
    return readRange(file, loc.offset, loc.length, `${source}: tensor '${t.name}'`);
  }
  if (t.rawData) return t.rawData;
  const typed = typedFieldBytes(t);
  if (typed) return typed;
  if (tensorByteSize(t) === 0) return new Uint8Array(0);
  throw new CicadaError(
    "E_ONNX_UNSUPPORTED",
    `${source}: tensor '${t.name}' has element type ${t.dataType} stored in a way we cannot read`,
  );
}

/** Reads `length` bytes at `offset` of `file` with one positional read loop; refuses short files. */
export async function readRange(
  file: string,
  offset: number,
  length: number,
  what: string,
): Promise<Uint8Array> {
  let handle;
  try {
    handle = await open(file, "r");
  } catch (e) {
    throw new CicadaError(
      "E_ONNX_EXTERNAL_DATA",
      `${what}: cannot open external-data file ${file}: ${(e as Error).message}`,
      {
        cause: e,
      },
    );
  }
  try {
    const size = (await handle.stat()).size;
    if (offset + length > size) {
      throw new CicadaError(
        "E_ONNX_EXTERNAL_DATA",
        `${what}: external-data file ${file} is too short (needs bytes ${offset}..${offset + length}, file has ${size})`,
      );
    }
    const out = Buffer.allocUnsafe(length);
    let done = 0;
    while (done < length) {
      const { bytesRead } = await handle.read(out, done, length - done, offset + done);
      if (bytesRead === 0) break;
      done += bytesRead;
    }
    return out;
  } finally {
    await handle.close();
  }
}

/** File size, or undefined if the file does not exist. */
export async function fileSize(path: string): Promise<number | undefined> {
  try {
    return (await stat(path)).size;
  } catch {
    return undefined;
  }
}
