// What the cache root holds and how it is kept from growing without bound. Every derived form (MiniLoader
// entries, PISeL stage files, ort-best models) and every generated zoo model or bundle lives in its own
// directory under the root, records where it came from (its origin: the bundle or model it was derived
// from), and has its modification time touched when a cold start uses it. `cicada cache` lists them;
// pruning removes those whose origin is gone or that went unused for a given time.
import { existsSync, readdirSync, readFileSync, statSync, utimesSync, writeFileSync } from "node:fs";
import { rm } from "node:fs/promises";
import { basename, join } from "node:path";
import { openBundle } from "../format/bundle.js";
import { miniLoaderKey, type MiniLoaderOptions } from "./miniloader.js";

/** The kinds of directory under a cache root, by subdirectory. */
export const CACHE_KINDS = ["miniloader", "pisel", "ort-best", "bundles", "zoo"] as const;
export type CacheKind = (typeof CACHE_KINDS)[number];

/** Written into a derived form's directory: what it was derived from. */
export const ORIGIN_FILE = "origin.json";

/** One directory of the cache. */
export interface CacheEntry {
  kind: CacheKind;
  dir: string;
  bytes: number;
  /** The bundle or model it was derived from; undefined where it does not say (or is itself a source). */
  origin?: string;
  /** False when the origin is recorded but no longer exists: the entry can never be used again. */
  originExists: boolean;
  /**
   * MiniLoader entries: false when the entry is not the one this runtime would use for its bundle (built by
   * another onnxruntime version, CPU or MiniLoader format, or for bundle content since changed).
   */
  current: boolean;
  /** Last time a cold start used it (or it was created), ms since the epoch. */
  lastUsedMs: number;
}

/** Records `origin` in a derived form's directory (called while it is still being written). */
export function writeOrigin(dir: string, origin: string): void {
  writeFileSync(join(dir, ORIGIN_FILE), JSON.stringify({ origin }));
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

function sizeOf(path: string): number {
  const s = statSync(path);
  if (!s.isDirectory()) return s.size;
  return readdirSync(path).reduce((n, f) => n + sizeOf(join(path, f)), 0);
}

function originOf(kind: CacheKind, dir: string): string | undefined {
  const read = (file: string, field: string): string | undefined => {
    try {
      const value = (JSON.parse(readFileSync(join(dir, file), "utf8")) as Record<string, unknown>)[field];
      return typeof value === "string" ? value : undefined;
    } catch {
      return undefined;
    }
  };
  if (kind === "miniloader") return read("entry.json", "bundle");
  if (kind === "bundles") return modelSource(dir);
  if (kind === "zoo") return undefined;
  return read(ORIGIN_FILE, "origin");
}

function modelSource(dir: string): string | undefined {
  try {
    const m = JSON.parse(readFileSync(join(dir, "manifest.json"), "utf8")) as {
      model?: { source?: unknown };
    };
    return typeof m.model?.source === "string" ? m.model.source : undefined;
  } catch {
    return undefined;
  }
}

/** True unless `dir` is a MiniLoader entry that its bundle, as it is now, would not use here. */
async function isCurrent(kind: CacheKind, dir: string, origin: string | undefined): Promise<boolean> {
  if (kind !== "miniloader" || origin === undefined || !existsSync(origin)) return true;
  try {
    const index = JSON.parse(readFileSync(join(dir, "entry.json"), "utf8")) as {
      options?: MiniLoaderOptions;
    };
    return miniLoaderKey(await openBundle(origin), index.options ?? {}) === basename(dir);
  } catch {
    return false; // an unreadable index or bundle: this entry cannot be used
  }
}

/** Every entry under `root` (temporary directories of writes in progress are skipped). */
export async function listCache(root: string): Promise<CacheEntry[]> {
  const entries: CacheEntry[] = [];
  for (const kind of CACHE_KINDS) {
    const base = join(root, kind);
    if (!existsSync(base)) continue;
    for (const name of readdirSync(base).sort()) {
      if (name.startsWith(".")) continue;
      const dir = join(base, name);
      if (!statSync(dir).isDirectory()) continue;
      const origin = originOf(kind, dir);
      entries.push({
        kind,
        dir,
        bytes: sizeOf(dir),
        ...(origin ? { origin } : {}),
        originExists: origin === undefined || existsSync(origin),
        current: await isCurrent(kind, dir, origin),
        lastUsedMs: statSync(dir).mtimeMs,
      });
    }
  }
  return entries;
}

/** What {@link pruneCache} removes. */
export interface PruneOptions {
  /** Entries that can never be used again: their recorded origin is gone, or they are not current. */
  orphans?: boolean;
  /** Entries unused for longer than this many days. */
  unusedDays?: number;
  /** List what would go, remove nothing. */
  dryRun?: boolean;
  /** The clock (tests). */
  nowMs?: number;
}

/**
 * Removes the entries `options` select and returns them. NOTE: an instance using an entry keeps the files it
 * has mapped, but a cold start that resolved an entry's paths just before would fail: prune orphans at any
 * time, unused entries when no instance is starting.
 */
export async function pruneCache(root: string, options: PruneOptions): Promise<CacheEntry[]> {
  const now = options.nowMs ?? Date.now();
  const doomed = (await listCache(root)).filter(
    (e) =>
      (options.orphans === true && (!e.originExists || !e.current)) ||
      (options.unusedDays !== undefined && now - e.lastUsedMs > options.unusedDays * 86_400_000),
  );
  if (!options.dryRun) for (const e of doomed) await rm(e.dir, { recursive: true, force: true });
  return doomed;
}
