// Test helper of the bundle fuzzer: the fuzz root's layout and the file operations mutations are made of.
// A mutant is a copy of the pristine bundle (and, for cache mutants or a warm start, of the pristine cache)
// edited in place. Edits that play a hostile author "re-sign" what they change (the manifest's size and
// checksum of a stage graph, a weight range's crc32), so that the runtime's containment is what is tested,
// not only its checksums; edits that play corruption do not.
import { createHash } from "node:crypto";
import { readdirSync, readFileSync, rmSync, symlinkSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { crc32 } from "node:zlib";
import { decodeModel, encodeModel } from "../../../src/format/onnx-io.js";
import type { ModelProto, TensorProto } from "../../../src/format/onnx-types.js";

/** Where a fuzz run keeps its files; the child's working directory is `work`. */
export interface FuzzLayout {
  root: string;
  /** The source model (eager's input) and the pristine bundle and cache built from it. */
  source: string;
  bundle: string;
  cache: string;
  /** Files outside every bundle a mutant may try to make the runtime read (see canaries in fuzz-child.ts). */
  canary: string;
  work: string;
}

/** The layout under `root`. */
export function layoutOf(root: string): FuzzLayout {
  return {
    root,
    source: join(root, "src", "mlp", "model.onnx"),
    bundle: join(root, "pristine", "bundle"),
    cache: join(root, "pristine", "cache"),
    canary: join(root, "canary"),
    work: join(root, "work"),
  };
}

/** The value every canary float holds: no output of the fuzz model comes near it. */
export const CANARY_VALUE = 31337;

/** What a mutation edits: the mutant's bundle and cache, and the run's layout. */
export interface MutationContext {
  layout: FuzzLayout;
  bundle: string;
  cache: string;
  /** A seeded generator for this mutant. */
  random: () => number;
}

/** A manifest as plain JSON (edits may break the schema on purpose). */
export type Json = Record<string, unknown> & {
  stages: (Record<string, unknown> & {
    file: string;
    weights: Record<string, unknown>;
    outputs: { name: string }[];
    inputs: { name: string; dtype: string }[];
    tensors: Record<string, unknown>[];
  })[];
  outputs: { name: string }[];
  inputs: { name: string; dtype: string }[];
};

export function readManifestJson(bundle: string): Json {
  return JSON.parse(readFileSync(join(bundle, "manifest.json"), "utf8")) as Json;
}

export function writeManifestJson(bundle: string, m: unknown): void {
  writeFileSync(join(bundle, "manifest.json"), JSON.stringify(m, null, 2));
}

/** Checksum text in the format `like` uses (sha256: or crc32:). */
function checksumLike(like: unknown, bytes: Uint8Array): string {
  if (typeof like === "string" && like.startsWith("crc32:"))
    return `crc32:${crc32(bytes).toString(16).padStart(8, "0")}`;
  return `sha256:${createHash("sha256").update(bytes).digest("hex")}`;
}

/**
 * Re-signs stage `index` in the manifest for the graph bytes now at its `file` (when the format has a
 * graph size and checksum; older formats had none).
 */
export function resignGraph(m: Json, index: number, bytes: Uint8Array): void {
  const s = m.stages[index]!;
  if ("fileBytes" in s) s.fileBytes = bytes.byteLength;
  if ("fileChecksum" in s) s.fileChecksum = checksumLike(s.fileChecksum, bytes);
}

/** The crc32 checksum text of a weight range. */
export function crcOf(bytes: Uint8Array): string {
  return `crc32:${crc32(bytes).toString(16).padStart(8, "0")}`;
}

/** Decodes the ONNX file at `path`, edits it, writes it back; returns the new bytes. */
export function editModel(path: string, edit: (m: ModelProto) => void): Uint8Array {
  const model = decodeModel(readFileSync(path), path);
  edit(model);
  const bytes = encodeModel(model);
  writeFileSync(path, bytes);
  return bytes;
}

/** Edits stage `index`'s graph and, when `resign`, the manifest's promise about it. */
export function editStageGraph(
  bundle: string,
  index: number,
  resign: boolean,
  edit: (m: ModelProto) => void,
): void {
  const m = readManifestJson(bundle);
  const bytes = editModel(join(bundle, m.stages[index]!.file), edit);
  if (resign) {
    resignGraph(m, index, bytes);
    writeManifestJson(bundle, m);
  }
}

/** Points every external initializer of `model` (and its subgraphs' none) at `location`. */
export function relocateExternal(model: ModelProto, location: string): number {
  let n = 0;
  for (const t of model.graph?.initializer ?? []) {
    if (t.dataLocation !== 1) continue;
    for (const e of t.externalData ?? []) if (e.key === "location") e.value = location;
    n++;
  }
  return n;
}

/** The bytes of an inline float initializer of `model` as stored in the file (raw_data, or float_data LE). */
function inlineFloatBytes(t: TensorProto): Uint8Array | undefined {
  if (t.dataType !== 1 || t.dataLocation === 1) return undefined;
  if (t.rawData && t.rawData.byteLength >= 4) return t.rawData;
  if (t.floatData?.length) return new Uint8Array(new Float32Array(t.floatData).buffer);
  return undefined;
}

/**
 * Flips the top exponent bit of one float of an inline float initializer of the ONNX file at `path`
 * (the largest one, or as `pick` chooses), in place, keeping everything else: the value changes by a
 * factor of 2^±128 and the file stays a valid model. Returns false if the file has no inline float.
 */
export function flipInlineFloat(path: string, pick: () => number): boolean {
  const bytes = readFileSync(path);
  const model = decodeModel(bytes, path);
  const candidates: Uint8Array[] = [];
  const visit = (ts: TensorProto[] | undefined) => {
    for (const t of ts ?? []) {
      const b = inlineFloatBytes(t);
      if (b) candidates.push(b);
    }
  };
  visit(model.graph?.initializer);
  for (const n of model.graph?.node ?? []) for (const a of n.attribute ?? []) if (a.t) visit([a.t]);
  candidates.sort((a, b) => b.byteLength - a.byteLength);
  for (const c of candidates) {
    const at = Buffer.from(bytes).indexOf(Buffer.from(c.buffer, c.byteOffset, c.byteLength));
    if (at < 0) continue;
    const floats = Math.floor(c.byteLength / 4);
    const i = Math.floor(pick() * floats);
    bytes[at + i * 4 + 3] = bytes[at + i * 4 + 3]! ^ 0x40;
    writeFileSync(path, bytes);
    return true;
  }
  return false;
}

/** The one directory under `<cache>/<kind>/` (a derived form of the fuzz bundle), or undefined. */
export function cacheEntryDir(cache: string, kind: string): string | undefined {
  try {
    const dirs = readdirSync(join(cache, kind)).filter((d) => !d.startsWith("."));
    return dirs.length === 1 ? join(cache, kind, dirs[0]!) : undefined;
  } catch {
    return undefined;
  }
}

/**
 * A mutation target by role: `bundle:<relative path>` or `cache:<kind>:<file>` (the file in the kind's one
 * entry). Undefined when the role names nothing (the layout changed: the catalogue needs updating).
 */
export function resolveRole(ctx: MutationContext, role: string): string | undefined {
  const [where, a, b] = role.split(":");
  if (where === "bundle") return join(ctx.bundle, a!);
  const dir = cacheEntryDir(ctx.cache, a!);
  return dir ? join(dir, b!) : undefined;
}

/** Byte-level mutations: flip 1-4 bytes, flip one bit, truncate, or append garbage. */
export type ByteHow = "flip" | "bit" | "truncate" | "extend";

/** Applies a byte-level mutation to `path`; returns what it did. */
export function mutateBytes(path: string, how: ByteHow, random: () => number): string {
  const bytes = readFileSync(path);
  const at = () => Math.floor(random() * bytes.length);
  switch (how) {
    case "flip": {
      const n = 1 + Math.floor(random() * 4);
      const places: number[] = [];
      for (let i = 0; i < n && bytes.length; i++) {
        const p = at();
        bytes[p] = bytes[p]! ^ (1 + Math.floor(random() * 255));
        places.push(p);
      }
      writeFileSync(path, bytes);
      return `flipped bytes at ${places.join(",")} of ${bytes.length}`;
    }
    case "bit": {
      const p = at();
      const bit = Math.floor(random() * 8);
      if (bytes.length) bytes[p] = bytes[p]! ^ (1 << bit);
      writeFileSync(path, bytes);
      return `flipped bit ${bit} of byte ${p} of ${bytes.length}`;
    }
    case "truncate": {
      const n = at();
      writeFileSync(path, bytes.subarray(0, n));
      return `truncated from ${bytes.length} to ${n} bytes`;
    }
    case "extend": {
      const extra = Buffer.alloc(1 + Math.floor(random() * 64));
      for (let i = 0; i < extra.length; i++) extra[i] = Math.floor(random() * 256);
      writeFileSync(path, Buffer.concat([bytes, extra]));
      return `appended ${extra.length} bytes to ${bytes.length}`;
    }
  }
}

/** Replaces `path` inside the mutant by a symlink to `target`. */
export const symlinkOver = (path: string, target: string) => {
  rmSync(path, { recursive: true, force: true });
  symlinkSync(target, path);
};

/** A canary file (outside every bundle). */
export const canary = (ctx: MutationContext, file: string): string => join(ctx.layout.canary, file);
