// Failures of the file system as a user can act on them: a full disk (ENOSPC, EDQUOT) is E_NO_SPACE naming
// the file, the bytes it needed where known and what is free; a cache that cannot be written (read-only,
// permissions) is E_CACHE naming the entry and saying to set CICADA_CACHE; an output that cannot be
// written is E_USAGE naming it. Space is checked with statfs before large writes, so that a write that
// cannot fit is refused before it starts instead of failing half-way.
import { statfs } from "node:fs/promises";
import { dirname, resolve } from "node:path";
import { defaultCacheRoot } from "../config.js";
import { CicadaError } from "../errors.js";

const NO_SPACE = new Set(["ENOSPC", "EDQUOT"]);
const NOT_WRITABLE = new Set(["EROFS", "EACCES", "EPERM"]);

/** What was being written when a file system call failed. */
export interface WriteContext {
  /** An output the user named (`--out`, `--outputs`), or an entry of the cache. */
  kind: "output" | "cache";
  /** The output or entry as a whole. */
  destination: string;
  /** Bytes the whole write needs, where known. */
  expectedBytes?: number;
  /** The file being written, where the error does not say. */
  file?: string;
}

/** Bytes an unprivileged writer may still use on the file system holding `path` (its nearest existing parent). */
export async function availableBytes(path: string): Promise<number | undefined> {
  let p = resolve(path);
  for (;;) {
    try {
      const s = await statfs(p);
      return s.bavail * s.bsize;
    } catch {
      const parent = dirname(p);
      if (parent === p) return undefined;
      p = parent;
    }
  }
}

/** A byte count for messages: exact bytes and MiB. */
export function formatSpace(bytes: number): string {
  return `${bytes.toLocaleString("en-US")} bytes (${(bytes / 2 ** 20).toFixed(1)} MiB)`;
}

/**
 * Refuses (E_NO_SPACE) a write of `bytes` into `dir` when the file system holding it has less free (with a
 * margin for metadata and block rounding: 64 KiB + 1 %), naming `what` is written, the bytes needed and
 * available.
 */
export async function ensureSpace(dir: string, bytes: number, what: string): Promise<void> {
  const free = await availableBytes(dir);
  if (free !== undefined && free < bytes + 65536 + bytes / 100) {
    throw new CicadaError(
      "E_NO_SPACE",
      `${what} needs ${formatSpace(bytes)} on the file system of ${dir}, which has ${formatSpace(free)} free; free some space or write elsewhere`,
    );
  }
}

/** The errno code of a Node.js system error (undefined for anything else). */
export function errnoOf(e: unknown): string | undefined {
  const code = (e as { code?: unknown } | null)?.code;
  return typeof code === "string" && /^E[A-Z]+$/.test(code) ? code : undefined;
}

/** Whether `e` is a file system failure that {@link codedWriteError} turns into a coded error. */
export function isWriteFailure(e: unknown): boolean {
  const code = errnoOf(e);
  return code !== undefined && (NO_SPACE.has(code) || NOT_WRITABLE.has(code));
}

/** What a coded write error was made from, so that it can be told again for another context. */
const origins = new WeakMap<object, { cause: unknown; ctx: WriteContext; written: number | undefined }>();

/**
 * The same failure told for a cache entry (`destination`) instead of an output: what createOnce does with
 * the errors of the writes it runs. Anything else is returned as it is.
 */
export async function asCacheError(e: unknown, destination: string): Promise<unknown> {
  const origin = typeof e === "object" && e !== null ? origins.get(e) : undefined;
  if (origin) {
    if (origin.ctx.kind === "cache") return e;
    return codedWriteError(origin.cause, { ...origin.ctx, kind: "cache", destination }, origin.written);
  }
  return codedWriteError(e, { kind: "cache", destination });
}

/**
 * The coded error for a failed write (see the file header), or `e` itself when it is not a disk-full or
 * not-writable failure. `written` is what was written before the failure, where known.
 */
export async function codedWriteError(e: unknown, ctx: WriteContext, written?: number): Promise<unknown> {
  const coded = await codeWriteError(e, ctx, written);
  if (coded !== e && typeof coded === "object" && coded !== null)
    origins.set(coded, { cause: e, ctx, written });
  return coded;
}

async function codeWriteError(e: unknown, ctx: WriteContext, written?: number): Promise<unknown> {
  const code = errnoOf(e);
  if (code === undefined || !isWriteFailure(e)) return e;
  const file = (e as { path?: unknown }).path;
  const at = typeof file === "string" ? file : (ctx.file ?? ctx.destination);
  const what = ctx.kind === "cache" ? `cache entry ${ctx.destination}` : `output ${ctx.destination}`;
  if (NO_SPACE.has(code)) {
    const free = await availableBytes(dirname(ctx.destination));
    const facts = [
      ctx.expectedBytes !== undefined ? `it needs ${formatSpace(ctx.expectedBytes)}` : undefined,
      written !== undefined && written > 0
        ? `${formatSpace(written)} were written before the disk filled`
        : undefined,
      free !== undefined ? `${formatSpace(free)} free now (nothing half-written was kept)` : undefined,
    ].filter((f) => f !== undefined);
    const advice =
      ctx.kind === "cache"
        ? "free some space, run `cicada cache prune`, or set CICADA_CACHE to a larger file system"
        : "free some space or write elsewhere";
    return new CicadaError(
      "E_NO_SPACE",
      `no space left on the device writing ${at} (${what})${facts.length ? `: ${facts.join("; ")}` : ""}; ${advice}`,
      { cause: e },
    );
  }
  const reason = code === "EROFS" ? "the file system is read-only" : "permission denied";
  if (ctx.kind === "cache") {
    return new CicadaError(
      "E_CACHE",
      `${what} cannot be written (${code}: ${reason}, at ${at}); set CICADA_CACHE to a writable directory, or make ${dirname(ctx.destination)} writable`,
      { cause: e },
    );
  }
  return new CicadaError(
    "E_USAGE",
    `${what} cannot be written (${code}: ${reason}, at ${at}); choose a writable path`,
    { cause: e },
  );
}

/**
 * For the CLI's last resort: a file system failure that reached the top without a code, as a coded error
 * (anything else is returned as it is). Paths under `cacheRoot` are cache entries (E_CACHE); others outputs.
 */
export async function codedFsError(e: unknown, cacheRoot = defaultCacheRoot()): Promise<unknown> {
  if (!isWriteFailure(e)) return e;
  const file = (e as { path?: unknown }).path;
  const path = typeof file === "string" ? resolve(file) : undefined;
  const root = resolve(cacheRoot);
  const inCache = path !== undefined && (path === root || path.startsWith(`${root}/`));
  return codedWriteError(e, { kind: inCache ? "cache" : "output", destination: path ?? "(unknown path)" });
}
