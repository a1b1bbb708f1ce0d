// What the cache root holds. Every derived form (MiniLoader entries, PISeL stage files, ort-best models)
// and every generated zoo model or bundle lives in its own directory under the root, records where it
// came from (its origin: the bundle or model it was derived from), and has its modification time touched
// when a cold start uses it. `cicada cache list` shows each with its size, last use and origin, and which
// live processes use it. Staging left by a killed process (`.NAME.tmp-PID-*`, `.NAME.evicted-PID-*`, see
// format/staging.ts), beside entries or inside them, is listed with its size and whether its owner still
// runs (see prune.ts for what pruning removes).
import { existsSync, readdirSync, readFileSync, statSync } from "node:fs";
import { basename, join } from "node:path";
import { openBundle } from "../format/bundle.js";
import { inspectStaging, parseStagingName, type FoundStaging } from "../format/staging.js";
import { mappedFilesUnder, pidsMapping } from "./in-use.js";
import { CACHE_KINDS, ORIGIN_FILE, kindDir, readJsonString, type CacheKind } from "./layout.js";
import { ENTRY_FILE, miniLoaderKey, type MiniLoaderOptions } from "./miniloader-entry.js";

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
   * Live processes using it: writing into it (staging inside it or beside it, owner alive) or mapping one
   * of its files. Pruning never removes an entry in use.
   */
  inUseBy: number[];
  /**
   * Set for the staging of a write (a directory or file beside an entry or inside one): the PID that owns
   * it and whether that process still runs (if not, it is a leftover: never used, removed by a prune).
   */
  staging?: { pid: number; ownerAlive: boolean; target: string; kind: "tmp" | "evicted" };
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
    inUseBy: found.ownerAlive ? [found.pid] : [],
    staging: { pid: found.pid, ownerAlive: found.ownerAlive, target: found.target, kind: found.kind },
  };
}

function originOf(kind: CacheKind, dir: string): string | undefined {
  if (kind === "miniloader") return readJsonString(dir, ENTRY_FILE, "bundle");
  if (kind === "bundles") return modelSource(dir);
  if (kind === "zoo") return undefined;
  return readJsonString(dir, ORIGIN_FILE, "origin");
}

/** The model a bundle in the cache was imported from (its manifest's `model.source`). */
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
    const index = JSON.parse(readFileSync(join(dir, ENTRY_FILE), "utf8")) as {
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
  const mapped = mappedFilesUnder(root);
  for (const kind of CACHE_KINDS) {
    const base = kindDir(root, kind);
    if (!existsSync(base)) continue;
    const staged: CacheEntry[] = [];
    for (const name of readdirSync(base).sort()) {
      if (parseStagingName(name)) {
        const found = inspectStaging(base, name);
        if (found) staged.push(stagingEntry(kind, found));
        continue;
      }
      if (name.startsWith(".")) continue;
      const dir = join(base, name);
      if (!statSync(dir, { throwIfNoEntry: false })?.isDirectory()) continue;
      const inside: CacheEntry[] = [];
      const bytes = sizeOf(dir, (found) => inside.push(stagingEntry(kind, found)));
      const origin = originOf(kind, dir);
      entries.push({
        kind,
        dir,
        bytes,
        ...(origin ? { origin } : {}),
        originExists: origin === undefined || existsSync(origin),
        current: await isCurrent(kind, dir, origin),
        lastUsedMs: statSync(dir, { throwIfNoEntry: false })?.mtimeMs ?? 0,
        inUseBy: [...inside.flatMap((e) => e.inUseBy), ...pidsMapping(mapped, dir)],
      });
      staged.push(...inside);
    }
    // An entry being written beside (its staging, owner alive) is in use too.
    for (const s of staged) {
      if (!s.staging!.ownerAlive) continue;
      const target = entries.find((e) => e.dir === join(base, s.staging!.target));
      if (target && !target.inUseBy.includes(s.staging!.pid)) target.inUseBy.push(s.staging!.pid);
    }
    entries.push(...staged);
  }
  for (const e of entries) e.inUseBy = [...new Set(e.inUseBy)].sort((a, b) => a - b);
  return entries;
}
