// Integrity of derived files (MiniLoader's optimised graphs, PISeL's stage files, ort-best's model):
// each carries a crc32 recorded when it was written, and is verified before anything computed from it
// is returned: once per process, or once per file identity across processes through a stamp beside the
// files. A file written since (in place or replaced) has another identity and is verified again; what a
// stamp cannot see is silent corruption on the device.
import { lstatSync, readFileSync, renameSync, rmSync, statSync, writeFileSync } from "node:fs";
import { basename, join } from "node:path";
import { CicadaError } from "../errors.js";
import { crc32Of, fileChecksumLike } from "../format/checksum.js";
import { stagingPathFor } from "../format/staging.js";

/** A file and the checksum recorded when it was written. */
export interface CheckedFile {
  path: string;
  checksum: string;
}

/** Written beside verified files: the identity of each file as it was when verified. */
const STAMP_FILE = "verified.json";

/** Files verified in this process, with their identity then. */
const verified = new Map<string, string>();

/** What changes when a file is written, replaced or truncated (ctime changes on any write). */
export function identity(path: string): string {
  const s = statSync(path, { bigint: true });
  return `${s.dev}:${s.ino}:${s.size}:${s.mtimeNs}:${s.ctimeNs}`;
}

function readStamp(dir: string): Record<string, string> {
  try {
    const json = JSON.parse(readFileSync(join(dir, STAMP_FILE), "utf8")) as unknown;
    return typeof json === "object" && json !== null ? (json as Record<string, string>) : {};
  } catch {
    return {};
  }
}

/** True if every file was verified (in this process, or by one whose stamp in `dir` still matches). */
export function isVerified(dir: string, files: readonly CheckedFile[]): boolean {
  let stamp: Record<string, string> | undefined;
  try {
    for (const f of files) {
      const now = identity(f.path);
      if (verified.get(f.path) === now) continue;
      stamp ??= readStamp(dir);
      if (stamp[basename(f.path)] !== `${now}|${f.checksum}`) return false;
      verified.set(f.path, now);
    }
  } catch {
    return false; // a file is gone
  }
  return true;
}

/** Records that `files` were verified, for later processes too (a read-only directory is fine). */
export function markVerified(dir: string, files: readonly CheckedFile[]): void {
  try {
    const stamp = readStamp(dir);
    for (const f of files) {
      const id = identity(f.path);
      verified.set(f.path, id);
      stamp[basename(f.path)] = `${id}|${f.checksum}`;
    }
    // Staged under the shared staging name, so that a process killed here leaves what prune removes.
    const tmp = stagingPathFor(join(dir, STAMP_FILE));
    try {
      writeFileSync(tmp, JSON.stringify(stamp));
      renameSync(tmp, join(dir, STAMP_FILE));
    } catch (e) {
      rmSync(tmp, { force: true });
      throw e;
    }
  } catch {
    // A read-only cache is still usable: later processes verify again.
  }
}

/** The first of `files` whose bytes do not match its checksum, with what was found; undefined if none. */
export async function firstMismatch(
  files: readonly CheckedFile[],
): Promise<{ file: CheckedFile; found: string } | undefined> {
  for (const f of files) {
    const found = await fileChecksumLike(f.path, f.checksum).catch(
      (e: unknown) => `unreadable (${(e as Error).message})`,
    );
    if (found !== f.checksum) return { file: f, found };
  }
  return undefined;
}

/**
 * Verifies `files` (in `dir`) unless verified already; on a mismatch calls `onCorrupt` (which evicts what
 * holds them) and throws E_BUNDLE_CHECKSUM naming the file.
 */
export async function verifyFiles(
  dir: string,
  files: readonly CheckedFile[],
  onCorrupt: () => Promise<void>,
): Promise<void> {
  if (isVerified(dir, files)) return;
  const bad = await firstMismatch(files);
  if (bad) {
    await onCorrupt();
    throw new CicadaError(
      "E_BUNDLE_CHECKSUM",
      `cache file ${bad.file.path} fails its checksum: expected ${bad.file.checksum}, found ${bad.found}; the entry was removed and will be rebuilt`,
    );
  }
  markVerified(dir, files);
}

/**
 * Throws E_BUNDLE_CHECKSUM unless `bytes`, read whole from `file`, match its recorded crc32: a file used
 * from memory is verified there, so what is parsed is what was checked.
 */
export function verifyBytes(file: CheckedFile, bytes: Uint8Array): void {
  const found = crc32Of(bytes);
  if (found !== file.checksum) {
    throw new CicadaError(
      "E_BUNDLE_CHECKSUM",
      `cache file ${file.path} fails its checksum: expected ${file.checksum}, found ${found}`,
    );
  }
}

/** True if `path` is a regular file and not a symbolic link (cache entries hold nothing else). */
export function isPlainFile(path: string): boolean {
  try {
    const s = lstatSync(path);
    return s.isFile();
  } catch {
    return false;
  }
}

/** Identities of `files` now, to notice later that one changed under a session that maps it. */
export function identitiesOf(files: readonly string[]): Map<string, string> {
  return new Map(files.map((f) => [f, identityOrGone(f)]));
}

/** The identity of a file, or `gone`. */
export function identityOrGone(path: string): string {
  try {
    return identity(path);
  } catch {
    return "gone";
  }
}
