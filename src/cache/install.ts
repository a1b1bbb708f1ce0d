// The one way a cache entry is written: its files are built in a staging directory beside it (the shared
// staging name of format/staging.ts, so that a killed writer's leftovers are recognised and pruned), after
// the disk it needs was checked, and then installed by renames: a new entry by renaming the directory into
// place, an entry that gains a form (MiniLoader's whole graph beside its stages) by renaming the new files
// into it and replacing its index last. A reader therefore sees an entry whole or not at all, and an index
// never names a file that is not there yet. Concurrent writers: the first to install wins; a loser is told
// and uses what won.
import { existsSync } from "node:fs";
import { mkdir, readdir, readFile, rename, rm, writeFile } from "node:fs/promises";
import { dirname, join } from "node:path";
import { asCacheError, codedWriteError, ensureSpace } from "../format/fs-errors.js";
import {
  cleanStaleStaging,
  holdStaging,
  releaseStaging,
  stagingPathFor,
  treeBytes,
} from "../format/staging.js";

/** What an {@link installEntry} did. */
export type Installed =
  /** The entry did not exist: the staging directory became it. */
  | "created"
  /** The entry existed: the staged files were added to it and its index replaced. */
  | "added"
  /** Another writer installed first (or the entry to add to vanished): nothing of ours was kept. */
  | "lost";

/** Options of {@link installEntry}. */
export interface InstallOptions {
  /** What is written, for the error when the disk is too small (e.g. "PISeL's stage files of B"). */
  what: string;
  /** Bytes the staged files will take, checked against the free space before anything is written. */
  expectedBytes: number;
  /** The entry's index file: written by `write` into the staging directory, installed last. */
  index: string;
  /**
   * Add to the existing entry instead of creating one: called with the entry's live index (undefined if
   * it has none) just before the files are moved in, it returns the index to install, or undefined if the
   * live index already has what was built (another writer was first: "lost").
   */
  addTo?: (liveIndex: string | undefined) => string | undefined;
}

/**
 * Builds an entry's files with `write` (into the staging directory it is given, index included) and
 * installs them at `dir` (see the file header). Failures remove the staging directory and surface as
 * E_NO_SPACE or E_CACHE naming the entry; a disk without `expectedBytes` free is refused before `write`.
 */
export async function installEntry(
  dir: string,
  options: InstallOptions,
  write: (staging: string) => Promise<void>,
): Promise<Installed> {
  const staging = stagingPathFor(dir);
  try {
    await mkdir(dirname(dir), { recursive: true });
    // A write killed before it was installed left its staging: removed before a new one starts.
    await cleanStaleStaging(dir);
    await ensureSpace(dirname(dir), options.expectedBytes, options.what);
  } catch (e) {
    throw await asCacheError(e, dir);
  }
  holdStaging(staging);
  try {
    await mkdir(staging);
    await write(staging);
    return options.addTo
      ? await addFiles(dir, staging, options.index, options.addTo)
      : await create(dir, staging);
  } catch (e) {
    const written = await treeBytes(staging);
    const coded = await codedWriteError(
      e,
      { kind: "cache", destination: dir, file: written.newest ?? staging },
      written.bytes,
    );
    throw await asCacheError(coded, dir);
  } finally {
    await rm(staging, { recursive: true, force: true }).catch(() => undefined);
    releaseStaging(staging);
  }
}

async function create(dir: string, staging: string): Promise<Installed> {
  try {
    await rename(staging, dir);
    return "created";
  } catch (e) {
    // A non-empty directory took the name meanwhile: another writer won.
    const code = (e as NodeJS.ErrnoException).code;
    if ((code === "ENOTEMPTY" || code === "EEXIST") && existsSync(dir)) return "lost";
    throw e;
  }
}

async function addFiles(
  dir: string,
  staging: string,
  index: string,
  merge: (liveIndex: string | undefined) => string | undefined,
): Promise<Installed> {
  if (!existsSync(dir)) return "lost";
  const live = await readFile(join(dir, index), "utf8").catch(() => undefined);
  const merged = merge(live);
  if (merged === undefined) return "lost";
  // NOTE: two processes adding the same form at once can interleave these renames; the index that lands
  // last may then name a file of the other's build, whose checksum differs: verification evicts the entry
  // and it is rebuilt. Never trusted, at worst built twice.
  for (const name of await readdir(staging)) {
    if (name !== index) await rename(join(staging, name), join(dir, name));
  }
  const staged = join(staging, index);
  await writeFile(staged, merged);
  await rename(staged, join(dir, index));
  return "added";
}
