// The safetensors container that holds a bundle's weights: an 8-byte little-endian header length, a JSON
// header naming every tensor (dtype, shape, data_offsets relative to the data section), then the data.
// We write it so that other tools read it (it is plain safetensors) and so that the runtime can read one
// stage with one large aligned read: the data section starts on a page boundary (the header is padded
// with spaces, which the format allows) and every stage's range starts on a 4096-byte boundary.
// NOTE: the reference Rust reader requires the tensors to tile the data section with no holes, so
// alignment is done with padding entries (dtype U8, keys `__pad.<n>`), never with gaps.
import { open } from "node:fs/promises";
import { CicadaError } from "../errors.js";
import type { DTypeName } from "./onnx-types.js";

/** Alignment of the data section and of stage ranges: one page. */
export const PAGE_BYTES = 4096;

/** Prefix of the padding entries' keys. */
export const PAD_KEY_PREFIX = "__pad.";

/** The largest header we accept (the reference reader's limit). */
export const MAX_HEADER_BYTES = 100_000_000;

/** safetensors dtype names, with their element sizes. */
const SAFETENSORS_DTYPES = {
  BOOL: 1,
  U8: 1,
  I8: 1,
  F8_E5M2: 1,
  F8_E4M3: 1,
  I16: 2,
  U16: 2,
  F16: 2,
  BF16: 2,
  I32: 4,
  U32: 4,
  F32: 4,
  F64: 8,
  I64: 8,
  U64: 8,
} as const;

export type SafetensorsDType = keyof typeof SAFETENSORS_DTYPES;

const FROM_DTYPE_NAME: Partial<Record<DTypeName, SafetensorsDType>> = {
  float32: "F32",
  float64: "F64",
  float16: "F16",
  bfloat16: "BF16",
  int8: "I8",
  uint8: "U8",
  int16: "I16",
  uint16: "U16",
  int32: "I32",
  uint32: "U32",
  int64: "I64",
  uint64: "U64",
  bool: "BOOL",
};

/** The safetensors dtype of an element type, or undefined for types safetensors cannot hold (strings). */
export function safetensorsDType(dtype: DTypeName): SafetensorsDType | undefined {
  return FROM_DTYPE_NAME[dtype];
}

/** Bytes per element of a safetensors dtype, or undefined if the name is not a safetensors dtype. */
export function safetensorsDTypeBytes(dtype: string): number | undefined {
  return Object.hasOwn(SAFETENSORS_DTYPES, dtype) ? SAFETENSORS_DTYPES[dtype as SafetensorsDType] : undefined;
}

/** One tensor to place, in file order. */
export interface PlanEntry {
  key: string;
  dtype: SafetensorsDType;
  shape: number[];
  byteLength: number;
  /** The entry's absolute file offset is a multiple of this (a power of two, at most PAGE_BYTES). */
  alignment: number;
}

/** Where a planned tensor lives. */
export interface PlacedEntry {
  key: string;
  /** Absolute offset in the file. */
  offset: number;
  byteLength: number;
}

/** A complete layout: the header bytes to write at offset 0, and each entry's place. */
export interface SafetensorsPlan {
  /** The 8-byte length prefix, the JSON header and its space padding: exactly `dataStart` bytes. */
  header: Uint8Array;
  /** Absolute offset of the data section (a multiple of PAGE_BYTES). */
  dataStart: number;
  /** The planned entries in the order given (padding entries are not listed). */
  entries: PlacedEntry[];
  /** Total file size. */
  fileBytes: number;
  /** Bytes of padding entries. */
  paddingBytes: number;
}

function product(shape: readonly number[]): number {
  return shape.reduce((a, b) => a * b, 1);
}

function alignUp(n: number, alignment: number): number {
  return Math.ceil(n / alignment) * alignment;
}

/**
 * Lays out `entries` in the given order: each one starts at a multiple of its alignment, with padding
 * entries filling the gaps; the header is padded so the data section starts on a page. `metadata` goes
 * into `__metadata__` (string values only, as the format requires).
 */
export function planSafetensors(
  entries: readonly PlanEntry[],
  metadata: Record<string, string> = {},
): SafetensorsPlan {
  const keys = new Set<string>();
  for (const e of entries) {
    if (keys.has(e.key) || e.key === "__metadata__") {
      throw new CicadaError("E_SAFETENSORS", `safetensors plan: key '${e.key}' is used twice or reserved`);
    }
    keys.add(e.key);
    const elementBytes = SAFETENSORS_DTYPES[e.dtype];
    if (product(e.shape) * elementBytes !== e.byteLength) {
      throw new CicadaError(
        "E_SAFETENSORS",
        `safetensors plan: '${e.key}' has shape [${e.shape.join(",")}] of ${e.dtype} (${product(e.shape) * elementBytes} bytes) but byteLength ${e.byteLength}`,
      );
    }
    if (!(e.alignment >= 1 && e.alignment <= PAGE_BYTES && (e.alignment & (e.alignment - 1)) === 0)) {
      throw new CicadaError(
        "E_SAFETENSORS",
        `safetensors plan: '${e.key}' asks for alignment ${e.alignment}; expected a power of two <= ${PAGE_BYTES}`,
      );
    }
  }
  let padCount = 0;
  const padKey = (): string => {
    let key = `${PAD_KEY_PREFIX}${padCount++}`;
    while (keys.has(key)) key = `_${key}`;
    return key;
  };
  // Offsets are relative to the data section; it starts on a page, so relative alignment is absolute.
  const header: Record<string, unknown> = { __metadata__: metadata };
  const relative: number[] = [];
  let position = 0;
  let paddingBytes = 0;
  for (const e of entries) {
    const start = alignUp(position, e.alignment);
    if (start > position) {
      header[padKey()] = { dtype: "U8", shape: [start - position], data_offsets: [position, start] };
      paddingBytes += start - position;
    }
    header[e.key] = { dtype: e.dtype, shape: e.shape, data_offsets: [start, start + e.byteLength] };
    relative.push(start);
    position = start + e.byteLength;
  }
  const json = Buffer.from(JSON.stringify(header), "utf8");
  const dataStart = alignUp(8 + json.length, PAGE_BYTES);
  const bytes = Buffer.alloc(dataStart, 0x20);
  bytes.writeBigUInt64LE(BigInt(dataStart - 8), 0);
  json.copy(bytes, 8);
  return {
    header: bytes,
    dataStart,
    entries: entries.map((e, i) => ({
      key: e.key,
      offset: dataStart + relative[i]!,
      byteLength: e.byteLength,
    })),
    fileBytes: dataStart + position,
    paddingBytes,
  };
}

/** A tensor as a safetensors header describes it. */
export interface SafetensorsTensor {
  key: string;
  dtype: SafetensorsDType;
  shape: number[];
  /** data_offsets, relative to the data section. */
  begin: number;
  end: number;
  /** Absolute file offset of the first byte. */
  offset: number;
}

/** A validated header. */
export interface SafetensorsHeader {
  /** Length of the JSON header (the value of the 8-byte prefix). */
  headerBytes: number;
  /** Absolute offset of the data section. */
  dataStart: number;
  metadata: Record<string, string>;
  /** Every tensor, padding entries included, in data order. */
  tensors: SafetensorsTensor[];
}

function isNonNegativeInt(v: unknown): v is number {
  return typeof v === "number" && Number.isSafeInteger(v) && v >= 0;
}

/**
 * Validates a header's JSON text for a file of `fileBytes` bytes: JSON object, `__metadata__` of strings,
 * known dtypes, shapes that match byte lengths, and tensors that tile the data section exactly.
 */
export function parseSafetensorsHeader(
  json: string,
  headerBytes: number,
  fileBytes: number,
  source: string,
): SafetensorsHeader {
  function fail(message: string): never {
    throw new CicadaError("E_SAFETENSORS", `${source}: ${message}`);
  }
  let parsed: unknown;
  try {
    parsed = JSON.parse(json);
  } catch (e) {
    fail(`the header is not valid JSON (${(e as Error).message})`);
  }
  if (typeof parsed !== "object" || parsed === null || Array.isArray(parsed)) {
    fail("the header is not a JSON object");
  }
  const dataStart = 8 + headerBytes;
  const dataBytes = fileBytes - dataStart;
  const metadata: Record<string, string> = {};
  const tensors: SafetensorsTensor[] = [];
  for (const [key, value] of Object.entries(parsed as Record<string, unknown>)) {
    if (key === "__metadata__") {
      if (typeof value !== "object" || value === null || Array.isArray(value)) {
        fail("__metadata__ is not an object");
      }
      for (const [k, v] of Object.entries(value as Record<string, unknown>)) {
        if (typeof v !== "string") fail(`__metadata__.${k} is ${typeof v}, expected a string`);
        metadata[k] = v;
      }
      continue;
    }
    const entry = value as { dtype?: unknown; shape?: unknown; data_offsets?: unknown } | null;
    if (typeof entry !== "object" || entry === null) fail(`tensor '${key}' is not an object`);
    const { dtype, shape, data_offsets: offsets } = entry;
    const elementBytes = typeof dtype === "string" ? safetensorsDTypeBytes(dtype) : undefined;
    if (elementBytes === undefined) fail(`tensor '${key}' has unknown dtype ${JSON.stringify(dtype)}`);
    if (!Array.isArray(shape) || !shape.every(isNonNegativeInt)) {
      fail(`tensor '${key}' has shape ${JSON.stringify(shape)}, expected an array of non-negative integers`);
    }
    if (!Array.isArray(offsets) || offsets.length !== 2 || !offsets.every(isNonNegativeInt)) {
      fail(`tensor '${key}' has data_offsets ${JSON.stringify(offsets)}, expected [begin, end]`);
    }
    const [begin, end] = offsets as [number, number];
    const expected = product(shape) * elementBytes;
    if (end < begin || end - begin !== expected) {
      fail(
        `tensor '${key}' spans bytes ${begin}..${end} (${end - begin}) but shape [${shape.join(",")}] of ${dtype as string} needs ${expected}`,
      );
    }
    if (end > dataBytes) {
      fail(`tensor '${key}' ends at data byte ${end}, past the end of the data section (${dataBytes} bytes)`);
    }
    tensors.push({
      key,
      dtype: dtype as SafetensorsDType,
      shape: shape,
      begin,
      end,
      offset: dataStart + begin,
    });
  }
  tensors.sort((a, b) => a.begin - b.begin || a.end - b.end);
  let position = 0;
  for (const t of tensors) {
    if (t.begin !== position) {
      fail(
        t.begin > position
          ? `tensor '${t.key}' starts at data byte ${t.begin}, leaving a hole after byte ${position}`
          : `tensor '${t.key}' starts at data byte ${t.begin}, overlapping the previous tensor (ends at ${position})`,
      );
    }
    position = t.end;
  }
  if (position !== dataBytes) {
    fail(`the tensors cover ${position} data bytes but the data section has ${dataBytes}`);
  }
  return { headerBytes, dataStart, metadata, tensors };
}

/** Reads and validates the header of the safetensors file at `path` (see parseSafetensorsHeader). */
export async function readSafetensorsHeader(path: string): Promise<SafetensorsHeader> {
  let handle;
  try {
    handle = await open(path, "r");
  } catch (e) {
    throw new CicadaError("E_SAFETENSORS", `cannot open ${path}: ${(e as Error).message}`, { cause: e });
  }
  try {
    const fileBytes = (await handle.stat()).size;
    if (fileBytes < 8) {
      throw new CicadaError(
        "E_SAFETENSORS",
        `${path}: ${fileBytes} bytes, too short for the 8-byte header length`,
      );
    }
    const prefix = Buffer.alloc(8);
    await handle.read(prefix, 0, 8, 0);
    const headerBytes = prefix.readBigUInt64LE(0);
    if (headerBytes > BigInt(Math.min(MAX_HEADER_BYTES, fileBytes - 8))) {
      throw new CicadaError(
        "E_SAFETENSORS",
        `${path}: header length ${headerBytes} does not fit (file has ${fileBytes} bytes, limit ${MAX_HEADER_BYTES})`,
      );
    }
    const json = Buffer.alloc(Number(headerBytes));
    await handle.read(json, 0, json.length, 8);
    return parseSafetensorsHeader(json.toString("utf8"), json.length, fileBytes, path);
  } finally {
    await handle.close();
  }
}
