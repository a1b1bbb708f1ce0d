// Outputs appear whole or not at all: files and directories are written under a temporary name beside
// their destination and renamed into place when complete, so an interrupted or failed write leaves
// nothing half-written where a user (or a later cold start) would read it.
import { existsSync } from "node:fs";
import { mkdir, rename, rm, writeFile } from "node:fs/promises";
import { basename, dirname, join } from "node:path";
import { randomBytes } from "node:crypto";
import { CicadaError } from "../errors.js";

function tempNameBeside(path: string): string {
  return join(dirname(path), `.${basename(path)}.tmp-${process.pid}-${randomBytes(4).toString("hex")}`);
}

/** Writes `data` to `path` through a temporary file and a rename. */
export async function writeFileAtomic(path: string, data: string | Uint8Array): Promise<void> {
  const tmp = tempNameBeside(path);
  try {
    await writeFile(tmp, data);
    await rename(tmp, path);
  } catch (e) {
    await rm(tmp, { force: true });
    throw e;
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
 * work is done, and again at commit if another process created it meanwhile.
 */
export async function stageOutputDir(destination: string): Promise<StagingDir> {
  if (existsSync(destination)) {
    throw new CicadaError(
      "E_OUTPUT_EXISTS",
      `output ${destination} exists already; choose another path or remove it first`,
    );
  }
  await mkdir(dirname(destination), { recursive: true });
  const path = tempNameBeside(destination);
  await mkdir(path);
  return {
    path,
    destination,
    async commit() {
      if (existsSync(destination)) {
        await rm(path, { recursive: true, force: true });
        throw new CicadaError("E_OUTPUT_EXISTS", `output ${destination} appeared while it was being written`);
      }
      await rename(path, destination);
    },
    async abort() {
      await rm(path, { recursive: true, force: true });
    },
  };
}

/** Runs `write` into a staging directory and commits it, removing the staging directory on failure. */
export async function writeOutputDir<T>(destination: string, write: (dir: string) => Promise<T>): Promise<T> {
  const staging = await stageOutputDir(destination);
  try {
    const result = await write(staging.path);
    await staging.commit();
    return result;
  } catch (e) {
    await staging.abort();
    throw e;
  }
}

/**
 * Creates `destination` once with `create` (which writes it atomically, e.g. through writeOutputDir):
 * nothing is done if it exists, and if another process completes it first (E_OUTPUT_EXISTS at commit),
 * that complete copy is used.
 */
export async function createOnce(destination: string, create: () => Promise<unknown>): Promise<void> {
  if (existsSync(destination)) return;
  try {
    await create();
  } catch (e) {
    if (!(e instanceof CicadaError && e.code === "E_OUTPUT_EXISTS" && existsSync(destination))) throw e;
  }
}
