// What the cache root holds and how it is kept from growing without bound. Every derived form (MiniLoader
// entries, PISeL stage files, ort-best models) and every generated zoo model or bundle lives in its own
// directory under the root, records where it came from (its origin: the bundle or model it was derived
// from), and has its modification time touched when a cold start uses it. `cicada cache` lists them;
// pruning removes those whose origin is gone or that went unused for a given time. Staging left by a killed
// process (`.NAME.tmp-PID-*`, `.NAME.evicted-PID-*`, see format/staging.ts), beside entries or inside
// them, is listed with its size and whether its owner still runs; pruning removes it once the owner is
// gone, never while it runs.
import { existsSync, readdirSync, readFileSync, statSync, utimesSync, writeFileSync } from "node:fs";
import { rm } from "node:fs/promises";
import { basename, join } from "node:path";
import { openBundle } from "../format/bundle.js";
import { inspectStaging, parseStagingName, type FoundStaging } from "../format/staging.js";
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
  /**
   * Set for the staging of a write (a directory or file beside an entry or inside one): the PID that owns
   * it and whether that process still runs (if not, it is a leftover: never used, removed by a prune).
   */
  staging?: { pid: number; ownerAlive: boolean; target: string; kind: "tmp" | "evicted" };
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

/** Size of `path`'s tree; staging found inside it is reported to `onStaging` and not counted. */
function sizeOf(path: string, onStaging?: (found: FoundStaging) => void): number {
  try {
    const s = statSync(path);
    if (!s.isDirectory()) return s.size;
    let n = 0;
    for (const f of readdirSync(path)) {
      const found = onStaging && inspectStaging(path, f);
      if (found) onStaging(found);
      else n += sizeOf(join(path, f), onStaging);
    }
    return n;
  } catch {
    return 0; // removed meanwhile (a concurrent prune or eviction)
  }
}

/** A staging directory or file as a cache entry. */
function stagingEntry(kind: CacheKind, found: FoundStaging): CacheEntry {
  return {
    kind,
    dir: found.path,
    bytes: sizeOf(found.path),
    originExists: true,
    current: found.ownerAlive,
    lastUsedMs: found.changedMs,
    staging: { pid: found.pid, ownerAlive: found.ownerAlive, target: found.target, kind: found.kind },
  };
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

/**
 * Every entry under `root`, and every staging directory or file (writes in progress, or left by a killed
 * process) beside the entries or inside them, with `staging` set.
 */
export async function listCache(root: string): Promise<CacheEntry[]> {
  const entries: CacheEntry[] = [];
  for (const kind of CACHE_KINDS) {
    const base = join(root, kind);
    if (!existsSync(base)) continue;
    const staged: CacheEntry[] = [];
    const onStaging = (found: FoundStaging) => staged.push(stagingEntry(kind, found));
    for (const name of readdirSync(base).sort()) {
      if (parseStagingName(name)) {
        const found = inspectStaging(base, name);
        if (found) onStaging(found);
        continue;
      }
      if (name.startsWith(".")) continue;
      const dir = join(base, name);
      if (!statSync(dir, { throwIfNoEntry: false })?.isDirectory()) continue;
      const origin = originOf(kind, dir);
      entries.push({
        kind,
        dir,
        bytes: sizeOf(dir, onStaging),
        ...(origin ? { origin } : {}),
        originExists: origin === undefined || existsSync(origin),
        current: await isCurrent(kind, dir, origin),
        lastUsedMs: statSync(dir).mtimeMs,
      });
    }
    entries.push(...staged);
  }
  return entries;
}

/** What {@link pruneCache} removes; staging whose owner is gone goes with either selector. */
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
 * Removes the entries `options` select and returns them; staging is removed only once its owner is gone
 * (a write in progress is never touched). NOTE: an instance using an entry keeps the files it
 * has mapped, but a cold start that resolved an entry's paths just before would fail: prune orphans at any
 * time, unused entries when no instance is starting.
 */
export async function pruneCache(root: string, options: PruneOptions): Promise<CacheEntry[]> {
  const now = options.nowMs ?? Date.now();
  const doomed = (await listCache(root)).filter((e) =>
    e.staging
      ? !e.staging.ownerAlive && (options.orphans === true || options.unusedDays !== undefined)
      : (options.orphans === true && (!e.originExists || !e.current)) ||
        (options.unusedDays !== undefined && now - e.lastUsedMs > options.unusedDays * 86_400_000),
  );
  if (!options.dryRun) for (const e of doomed) await rm(e.dir, { recursive: true, force: true });
  return doomed;
}
