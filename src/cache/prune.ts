// Keeping the cache from growing without bound. Pruning removes what its selectors choose: entries that
// can never be used again (origin gone, or superseded by another onnxruntime, CPU or MiniLoader format),
// entries unused for N days, and, to bring the cache under a size, the least recently used entries until
// it fits. Staging left by a process that is gone goes with any selector. Never removed: a write in
// progress (staging whose owner runs), an entry a live process uses (see listing.ts), and, when pruning to
// a size, the sources (generated zoo models, imported bundles) unless asked: they cost a generation or an
// import to make again, the derived forms only a build.
import { rm } from "node:fs/promises";
import { SOURCE_KINDS } from "./layout.js";
import { listCache, type CacheEntry } from "./listing.js";

/** What {@link pruneCache} removes. */
export interface PruneOptions {
  /** Entries that can never be used again: their recorded origin is gone, or they are not current. */
  orphans?: boolean;
  /** Entries unused for longer than this many days. */
  unusedDays?: number;
  /** Then the least recently used entries, until the cache takes at most this many bytes. */
  maxBytes?: number;
  /** With `maxBytes`: zoo models and bundles may go too (by default only derived forms do). */
  sources?: boolean;
  /** List what would go, remove nothing. */
  dryRun?: boolean;
  /** The clock (tests). */
  nowMs?: number;
}

/** The bytes of everything listed (entries and staging). */
export function totalBytes(entries: readonly CacheEntry[]): number {
  return entries.reduce((n, e) => n + e.bytes, 0);
}

/** What a prune with `options` removes from `entries` (see {@link pruneCache}), in removal order. */
export function selectDoomed(entries: readonly CacheEntry[], options: PruneOptions): CacheEntry[] {
  const now = options.nowMs ?? Date.now();
  const anySelector =
    options.orphans === true || options.unusedDays !== undefined || options.maxBytes !== undefined;
  const doomed = entries.filter((e) =>
    e.staging
      ? !e.staging.ownerAlive && anySelector
      : e.inUseBy.length === 0 &&
        ((options.orphans === true && (!e.originExists || !e.current)) ||
          (options.unusedDays !== undefined && now - e.lastUsedMs > options.unusedDays * 86_400_000)),
  );
  if (options.maxBytes === undefined) return doomed;
  let left = totalBytes(entries) - totalBytes(doomed);
  const lru = entries
    .filter(
      (e) =>
        !e.staging &&
        !doomed.includes(e) &&
        e.inUseBy.length === 0 &&
        (options.sources === true || !SOURCE_KINDS.includes(e.kind)),
    )
    .sort((a, b) => a.lastUsedMs - b.lastUsedMs || a.dir.localeCompare(b.dir));
  for (const e of lru) {
    if (left <= options.maxBytes) break;
    doomed.push(e);
    left -= e.bytes;
  }
  return doomed;
}

/**
 * Removes the entries `options` select and returns them (see the file header). NOTE: a cold start that
 * resolved an entry's paths just before it went would fail; an entry its process maps is kept, but one
 * between its lookup and its mapping is not seen: prune unused entries when no instance is starting.
 */
export async function pruneCache(root: string, options: PruneOptions): Promise<CacheEntry[]> {
  const doomed = selectDoomed(await listCache(root), options);
  if (!options.dryRun) for (const e of doomed) await rm(e.dir, { recursive: true, force: true });
  return doomed;
}
