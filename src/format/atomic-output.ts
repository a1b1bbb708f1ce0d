// Outputs appear whole or not at all: files and directories are written under a temporary name beside
// their destination (`.NAME.tmp-PID-RANDOM`, see staging.ts) and renamed into place when complete, so an
// interrupted or failed write leaves nothing half-written where a user (or a later cold start) would read
// it. A write first removes stale staging of the same destination left by a killed process; a write that
// fails removes its own; a disk that fills or a directory that cannot be written gives a coded error
// (fs-errors.ts) instead of a system error.
import { existsSync } from "node:fs";
import { mkdir, rename, rm, writeFile } from "node:fs/promises";
import { dirname } from "node:path";
import { CicadaError } from "../errors.js";
import { asCacheError, codedWriteError, ensureSpace, type WriteContext } from "./fs-errors.js";
import { cleanStaleStaging, holdStaging, releaseStaging, stagingPathFor, treeBytes } from "./staging.js";

/** Where a write goes, for its errors: a user's output (default) or a cache entry. */
export interface WriteOptions {
  kind?: WriteContext["kind"];
  /** Bytes the write needs, where known: checked against the free space before anything is written. */
  expectedBytes?: number;
}

/** Removes `staging` (best effort) and returns the coded form of `e`. */
async function failed(e: unknown, staging: string, ctx: WriteContext): Promise<unknown> {
  const written = await treeBytes(staging);
  await rm(staging, { recursive: true, force: true }).catch(() => undefined);
  releaseStaging(staging);
  // A failed write through a file handle does not say which file: the one written last was it.
  const named = typeof (e as { path?: unknown } | null)?.path === "string";
  return codedWriteError(e, named || !written.newest ? ctx : { ...ctx, file: written.newest }, written.bytes);
}

/**
 * mkdir -p that reports the real reason a level cannot be made (a recursive mkdir on a read-only file
 * system says ENOENT for the missing parent instead of EROFS).
 */
async function makeDirs(dir: string): Promise<void> {
  try {
    await mkdir(dir, { recursive: true });
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code !== "ENOENT" || dirname(dir) === dir) throw e;
    await makeDirs(dirname(dir));
    await mkdir(dir).catch((again: NodeJS.ErrnoException) => {
      if (again.code !== "EEXIST") throw again;
    });
  }
}

/** Writes `data` to `path` through a temporary file and a rename. */
export async function writeFileAtomic(
  path: string,
  data: string | Uint8Array,
  options: WriteOptions = {},
): Promise<void> {
  const ctx: WriteContext = { kind: options.kind ?? "output", destination: path };
  // An output's directory is made, as `cicada run --outputs out/run-1/y.json` would expect.
  await makeDirs(dirname(path)).catch(async (e: unknown) => {
    throw await codedWriteError(e, ctx);
  });
  await cleanStaleStaging(path);
  const bytes = typeof data === "string" ? Buffer.byteLength(data) : data.byteLength;
  if (bytes >= 2 ** 20) await ensureSpace(dirname(path), bytes, `writing ${path}`);
  const tmp = stagingPathFor(path);
  holdStaging(tmp);
  ctx.file = tmp;
  try {
    await writeFile(tmp, data);
    await rename(tmp, path);
    releaseStaging(tmp);
  } catch (e) {
    throw await failed(e, tmp, { ...ctx, expectedBytes: bytes });
  }
}

/** A directory being written; `commit` moves it to its destination, `abort` removes it. */
export interface StagingDir {
  /** The temporary directory to write into. */
  readonly path: string;
  /** The final destination. */
  readonly destination: string;
  commit(): Promise<void>;
  abort(): Promise<void>;
}

/**
 * Starts writing an output directory. Refuses (E_OUTPUT_EXISTS) when the destination exists, before any
 * work is done, and again at commit if another process created it meanwhile. Stale staging of the same
 * destination (its owner gone) is removed first; with `expectedBytes`, a disk without that much free
 * space is refused (E_NO_SPACE) before anything is written.
 */
export async function stageOutputDir(destination: string, options: WriteOptions = {}): Promise<StagingDir> {
  if (existsSync(destination)) {
    throw new CicadaError(
      "E_OUTPUT_EXISTS",
      `output ${destination} exists already; choose another path or remove it first`,
    );
  }
  const ctx: WriteContext = {
    kind: options.kind ?? "output",
    destination,
    ...(options.expectedBytes !== undefined ? { expectedBytes: options.expectedBytes } : {}),
  };
  const path = stagingPathFor(destination);
  try {
    await makeDirs(dirname(destination));
    await cleanStaleStaging(destination);
    if (options.expectedBytes !== undefined)
      await ensureSpace(dirname(destination), options.expectedBytes, `${ctx.kind} ${destination}`);
    holdStaging(path);
    await mkdir(path);
  } catch (e) {
    throw await failed(e, path, ctx);
  }
  return {
    path,
    destination,
    async commit() {
      if (existsSync(destination)) {
        await rm(path, { recursive: true, force: true });
        releaseStaging(path);
        throw new CicadaError("E_OUTPUT_EXISTS", `output ${destination} appeared while it was being written`);
      }
      try {
        await rename(path, destination);
        releaseStaging(path);
      } catch (e) {
        throw await failed(e, path, ctx);
      }
    },
    async abort() {
      await rm(path, { recursive: true, force: true });
      releaseStaging(path);
    },
  };
}

/**
 * Runs `write` into a staging directory and commits it, removing the staging directory on failure (a
 * full disk or an unwritable directory surfaces as E_NO_SPACE, E_CACHE or E_USAGE naming the file).
 */
export async function writeOutputDir<T>(
  destination: string,
  write: (dir: string) => Promise<T>,
  options: WriteOptions = {},
): Promise<T> {
  const staging = await stageOutputDir(destination, options);
  let result: T;
  try {
    result = await write(staging.path);
  } catch (e) {
    throw await failed(e, staging.path, {
      kind: options.kind ?? "output",
      destination,
      ...(options.expectedBytes !== undefined ? { expectedBytes: options.expectedBytes } : {}),
    });
  }
  await staging.commit();
  return result;
}

/**
 * Creates `destination` (a cache entry) once with `create` (which writes it atomically, e.g. through
 * writeOutputDir): nothing is done if it exists, and if another process completes it first
 * (E_OUTPUT_EXISTS at commit), that complete copy is used. Stale staging of the entry left by a killed
 * process is removed first; a cache that cannot be written gives E_CACHE (E_NO_SPACE when full), naming
 * the entry.
 */
export async function createOnce(destination: string, create: () => Promise<unknown>): Promise<void> {
  if (existsSync(destination)) return;
  try {
    await cleanStaleStaging(destination);
    await create();
  } catch (e) {
    if (e instanceof CicadaError && e.code === "E_OUTPUT_EXISTS" && existsSync(destination)) return;
    // A write failure reported for an "output" inside the cache is one of a cache entry.
    throw await asCacheError(e, destination);
  }
}
