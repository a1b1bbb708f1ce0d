// Where things live under a cache root, and the few facts every cache directory shares: its kind (the
// subdirectory it sits in), the origin it records (the bundle or model it was derived from), its last use
// (its modification time, touched when a cold start uses it), the file names of a stage ("stage-NNN", one
// place for MiniLoader's graphs and PISeL's files) and how an entry's key is hashed. Loads no code of the
// runtime: listing and pruning a cache never load onnxruntime.
import { createHash } from "node:crypto";
import { readFileSync, utimesSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import type { Bundle } from "../format/bundle.js";

/** The kinds of directory under a cache root, by subdirectory. */
export const CACHE_KINDS = ["miniloader", "pisel", "ort-best", "bundles", "zoo"] as const;
export type CacheKind = (typeof CACHE_KINDS)[number];

/** Kinds that hold sources (generated zoo models, imported bundles), not forms derived from them. */
export const SOURCE_KINDS: readonly CacheKind[] = ["bundles", "zoo"];

/** The directory of `kind` under `cacheRoot`. */
export function kindDir(cacheRoot: string, kind: CacheKind): string {
  return join(cacheRoot, kind);
}

/** Where the verification stamps of source models (eager's and ort-best's input) are kept. */
export function sourceStampsDir(cacheRoot: string): string {
  return join(cacheRoot, "sources");
}

/** Written into a derived form's directory: what it was derived from. */
export const ORIGIN_FILE = "origin.json";

/** Records `origin` in a derived form's directory (called while it is still being written). */
export function writeOrigin(dir: string, origin: string): void {
  writeFileSync(join(dir, ORIGIN_FILE), JSON.stringify({ origin }));
}

/** The string `field` of the JSON object in `dir/file`; undefined if it is missing or unreadable. */
export function readJsonString(dir: string, file: string, field: string): string | undefined {
  try {
    const value = (JSON.parse(readFileSync(join(dir, file), "utf8")) as Record<string, unknown>)[field];
    return typeof value === "string" ? value : undefined;
  } catch {
    return undefined;
  }
}

/** Marks a cache directory as used now. A read-only cache is still usable: the error is ignored. */
export function touchEntry(dir: string): void {
  try {
    const now = new Date();
    utimesSync(dir, now, now);
  } catch {
    // Not ours to change: fine.
  }
}

/** `stage-NNN`: the stem of stage `index`'s files in every cache entry that holds one file per stage. */
export function stageStem(index: number): string {
  return `stage-${String(index).padStart(3, "0")}`;
}

/**
 * The bytes of `bundle`'s stage weight ranges: what a derived form's copy of the weights takes, at most
 * (a weight shared by stages is in each one's range). Read from the ranges, which are checked when read,
 * not from the manifest's total, which nothing checks.
 */
export function stageWeightBytes(bundle: Bundle): number {
  return bundle.manifest.stages.reduce((n, s) => n + s.weights.length, 0);
}

/** A cache key: the first 24 hex digits of the sha256 of `parts`, in order. */
export function entryKey(...parts: string[]): string {
  const h = createHash("sha256");
  for (const p of parts) h.update(p);
  return h.digest("hex").slice(0, 24);
}
