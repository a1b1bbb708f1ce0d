// Finding and building MiniLoader's cache entry of a bundle. Finding is what a cold start does: it reads
// the entry's index and checks its files' names and sizes, nothing more (no onnxruntime, no thread). A
// miss is built on the build thread (build-thread.ts), off the calling thread, into a staging directory
// that is installed whole (cache/install.ts): safe under concurrent processes, a loser of the race uses
// the winner's entry. The disk the build needs is checked before anything is written. An entry holds the
// forms asked of it (plan.ts); one asked for a form it lacks gains it, its other form kept as it is.
import { randomBytes } from "node:crypto";
import { statSync } from "node:fs";
import { rm, stat, writeFile } from "node:fs/promises";
import { basename, join } from "node:path";
import { CicadaError } from "../../errors.js";
import type { Bundle } from "../../format/bundle.js";
import { asCacheError } from "../../format/fs-errors.js";
import { installEntry, type Installed } from "../../cache/install.js";
import { stageWeightBytes, touchEntry } from "../../cache/layout.js";
import {
  ENTRY_FILE,
  checkedFilesOf,
  entryDirOf,
  hasForm,
  miniLoaderKey,
  newEntryIndex,
  readEntry,
  type EntryIndex,
  type MiniLoaderEntry,
  type MiniLoaderForm,
  type MiniLoaderOptions,
} from "../../cache/miniloader-entry.js";
import { formsFor, plannedForm } from "./plan.js";
import { markVerified } from "./verify.js";

/** Options of {@link findOptimizedStages} and {@link ensureOptimizedStages}. */
export interface EnsureOptions extends MiniLoaderOptions {
  /**
   * The forms the caller will use: `stages` (mini, cicada's pipeline), `whole` (cicada's whole plan).
   * find: default the form cicada's auto plan runs (plan.ts); ensure: default every form the bundle can
   * get (a caller that does not say may use either). A whole graph asked of a model too large for one is
   * not built (its stages are).
   */
  forms?: readonly MiniLoaderForm[];
}

/** The entry at `dir` if it holds every one of `forms`; marked as used. */
async function usableEntry(
  dir: string,
  key: string,
  bundle: Bundle,
  forms: readonly MiniLoaderForm[],
): Promise<MiniLoaderEntry | undefined> {
  const entry = await readEntry(dir, key, bundle.manifest.stages.length);
  if (!entry || !forms.every((f) => hasForm(entry, f))) return undefined;
  touchEntry(dir);
  return entry;
}

/** The usable entry of `bundle` in the cache, without building one (undefined when there is none). */
export async function findOptimizedStages(
  bundle: Bundle,
  cacheRoot: string,
  options: EnsureOptions = {},
): Promise<MiniLoaderEntry | undefined> {
  const forms = options.forms ? formsFor(bundle, options.forms) : [plannedForm(bundle)];
  return usableEntry(entryDirOf(bundle, cacheRoot, options), miniLoaderKey(bundle, options), bundle, forms);
}

/** Builds in flight in this process, by entry directory: a second caller waits for the first. */
const building = new Map<string, Promise<unknown>>();

/**
 * The optimised graphs of `bundle` for this machine, building the forms missing on a miss (the cost of
 * one plain cold start each, on the build thread). `onStage` hears of each stage built.
 */
export async function ensureOptimizedStages(
  bundle: Bundle,
  cacheRoot: string,
  options: EnsureOptions & { onStage?: (done: number, total: number) => void } = {},
): Promise<{ entry: MiniLoaderEntry; built: boolean }> {
  const key = miniLoaderKey(bundle, options);
  const dir = entryDirOf(bundle, cacheRoot, options);
  const forms = formsFor(bundle, options.forms);
  // At most three rounds: a build, a lost race (the winner lacks a form), a build onto the winner.
  for (let round = 0; round < 3; round++) {
    const existing = await usableEntry(dir, key, bundle, forms);
    if (existing) return { entry: existing, built: false };
    const inFlight = building.get(dir);
    if (inFlight) {
      await inFlight.catch(() => undefined);
      continue;
    }
    const build = buildMissing(bundle, dir, key, forms, options);
    building.set(dir, build);
    let built: Built;
    try {
      built = await build;
    } finally {
      building.delete(dir);
    }
    if (built.installed === "lost") continue;
    const entry = await readEntry(dir, key, bundle.manifest.stages.length);
    if (!entry || !forms.every((f) => hasForm(entry, f)))
      throw new CicadaError("E_RUNTIME", `MiniLoader cache entry ${dir} vanished after it was written`);
    // The checksums of what was built were computed from the files written: they are verified, if the
    // files in place are those (a new entry is, installed in one rename; files added to an entry are
    // unless another process adding the same form renamed its own over them, then they are verified
    // where first used). NOTE: a rename between this check and the stamp is not seen; it can only
    // put another build of the same bundle in place.
    const graphs = built.forms.flatMap((f) => (f === "whole" ? [entry.whole!] : entry.stages));
    const ours = checkedFilesOf(graphs).every(
      (f) => statSync(f.path).ino === built.inodes.get(basename(f.path)),
    );
    if (ours) markVerified(entry, graphs);
    return { entry, built: true };
  }
  throw new CicadaError("E_CACHE", `MiniLoader cache entry ${dir} keeps changing under this build`);
}

/** What {@link buildMissing} did: how it installed, the forms it built and their files' inodes by name. */
interface Built {
  installed: Installed;
  forms: MiniLoaderForm[];
  inodes: Map<string, number>;
}

/** Builds the forms of `forms` that the entry at `dir` lacks, and installs them. */
async function buildMissing(
  bundle: Bundle,
  dir: string,
  key: string,
  forms: readonly MiniLoaderForm[],
  options: EnsureOptions & { onStage?: (done: number, total: number) => void },
): Promise<Built> {
  // An entry with some of the forms gains the others; an unusable one is replaced.
  const existing = await readEntry(dir, key, bundle.manifest.stages.length);
  const missing = forms.filter((f) => !existing || !hasForm(existing, f));
  if (!existing) {
    await rm(dir, { recursive: true, force: true }).catch(async (e: unknown) => {
      throw await asCacheError(e, dir);
    });
  }
  // Builds only: the thread's code stays out of a cold start that finds its entry.
  const { runBuild } = await import("./build-thread.js");
  const buildId = existing?.buildId ?? randomBytes(8).toString("hex");
  let index: EntryIndex | undefined;
  const inodes = new Map<string, number>();
  const installed = await installEntry(
    dir,
    {
      what: `MiniLoader's cache entry for ${bundle.dir}`,
      // Each form's data files are about the size of the weights (onnxruntime's layouts keep their size).
      expectedBytes: stageWeightBytes(bundle) * missing.length,
      index: ENTRY_FILE,
      ...(existing ? { addTo: (live: string | undefined) => withForms(live, index!, missing) } : {}),
    },
    async (staging) => {
      const built = await runBuild(
        {
          kind: "miniloader",
          bundleDir: bundle.dir,
          key,
          options: { prepack: options.prepack ?? false },
          forms: missing,
          staging,
        },
        options.onStage,
      );
      index = newEntryIndex(bundle, key, buildId, options, built ?? {});
      const files = checkedFilesOf([...(built?.stages ?? []), ...(built?.whole ? [built.whole] : [])]);
      for (const f of files) inodes.set(basename(f.path), (await stat(f.path)).ino);
      await writeFile(join(staging, ENTRY_FILE), JSON.stringify(index, null, 2));
    },
  );
  return { installed, forms: missing, inodes };
}

/**
 * The index to install when `built` adds `forms` to an entry whose live index is `live`: the live one with
 * the new forms; undefined when it has them already (another process added them first) or is gone.
 */
function withForms(
  live: string | undefined,
  built: EntryIndex,
  forms: readonly MiniLoaderForm[],
): string | undefined {
  if (live === undefined) return undefined;
  try {
    const current = JSON.parse(live) as EntryIndex;
    if (current.key !== built.key || current.buildId !== built.buildId) return undefined;
    if (forms.every((f) => current[f] !== undefined)) return undefined;
    const merged: EntryIndex = { ...current };
    for (const f of forms) {
      if (f === "stages") merged.stages = built.stages!;
      else merged.whole = built.whole!;
    }
    return JSON.stringify(merged, null, 2);
  } catch {
    return undefined;
  }
}
