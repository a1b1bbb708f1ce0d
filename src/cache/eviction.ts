// Removing a cache entry found corrupt, so that its next use rebuilds it. A MiniLoader entry is moved
// aside atomically (under the shared staging name, so that a process killed meanwhile leaves what prune
// removes) and only then removed; the build it was asked to evict is the only one removed, however late
// the failure that asked is noticed. A derived form (PISeL's files, ort-best's model) is removed whole.
import { rename, rm } from "node:fs/promises";
import { dirname } from "node:path";
import { stagingPathFor } from "../format/staging.js";
import type { CheckedFile } from "./integrity.js";
import { buildIdAt, type MiniLoaderEntry } from "./miniloader-entry.js";

/** Builds evicted by this process (by directory: copies of one build under other cache roots differ). */
const evicted = new Set<string>();

/**
 * Removes a MiniLoader entry found corrupt, so that the next cold start rebuilds it. Only that build: a
 * failure noticed late (or in another process) must not remove the rebuilt entry now in its place. The
 * entry is moved aside atomically, then checked; a rebuild moved aside by mistake is put back if nothing
 * took its place meanwhile.
 */
export async function evictEntry(entry: MiniLoaderEntry): Promise<void> {
  const build = `${entry.dir}|${entry.buildId}`;
  // Several failures of one build (its stages' checks) evict it once.
  if (entry.buildId) {
    if (evicted.has(build)) return;
    evicted.add(build);
  }
  const aside = stagingPathFor(entry.dir, "evicted");
  try {
    await rename(entry.dir, aside);
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === "ENOENT") return;
    evicted.delete(build);
    throw e;
  }
  const moved = await buildIdAt(aside);
  if (moved !== "" && moved !== entry.buildId) {
    const restored = await rename(aside, entry.dir).then(
      () => true,
      () => false,
    );
    if (restored) return;
  }
  await rm(aside, { recursive: true, force: true });
}

/** Removes the derived form that holds `file` (found corrupt): the next use rebuilds it. */
export async function evictForm(file: CheckedFile): Promise<void> {
  await rm(dirname(file.path), { recursive: true, force: true });
}
