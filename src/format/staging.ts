// Staging: every output and cache entry is written under a hidden name beside its destination,
// `.NAME.tmp-PID-RANDOM` (or `.NAME.evicted-PID-RANDOM` for a cache entry moved aside to be removed), and
// renamed into place when complete. A process killed mid-write leaves its staging behind; the PID in the
// name says whose it was, so that a later process can tell a leftover (owner gone) from a write in progress
// (owner alive) and remove only the former: a rerun of the same output cleans its own stale staging, and
// `cicada cache prune` removes it anywhere in the cache.
//
// PID reuse: a live process with the owner's PID is the owner only if it started before the staging
// directory last changed (its owner created and filled it); one started later reuses the PID, and the
// staging is stale. Start times come from /proc (Linux); elsewhere the PID alone decides, which can only
// keep a leftover longer, never remove a live write. A staging written in another PID namespace (another
// container sharing the cache) looks dead or alive by chance: prune such caches only when no writer runs.
import { readFileSync, rmSync, statSync } from "node:fs";
import { readdir, rm, stat } from "node:fs/promises";
import { randomBytes } from "node:crypto";
import { basename, dirname, join } from "node:path";

/** What a staging name says: the destination's name, the kind of staging and its owner's PID. */
export interface StagingName {
  /** Name of the destination beside it (the entry or output it was to become, or was). */
  target: string;
  kind: "tmp" | "evicted";
  pid: number;
}

const PATTERN = /^\.(.+)\.(tmp|evicted)-(\d{1,10})-[0-9a-f]{4,32}$/;

/** Parses a staging name (`.NAME.tmp-PID-HEX`, `.NAME.evicted-PID-HEX`); undefined for any other name. */
export function parseStagingName(name: string): StagingName | undefined {
  const m = PATTERN.exec(name);
  if (!m) return undefined;
  const pid = Number(m[3]);
  return Number.isSafeInteger(pid) && pid > 0
    ? { target: m[1]!, kind: m[2] as "tmp" | "evicted", pid }
    : undefined;
}

/** A new staging path beside `destination`, owned by this process. */
export function stagingPathFor(destination: string, kind: "tmp" | "evicted" = "tmp"): string {
  return join(
    dirname(destination),
    `.${basename(destination)}.${kind}-${process.pid}-${randomBytes(4).toString("hex")}`,
  );
}

/** Boot time (ms since the epoch) from /proc/stat, cached; undefined where there is no /proc. */
let bootMs: number | undefined | null = null;
function bootTimeMs(): number | undefined {
  if (bootMs === null) {
    try {
      const btime = /^btime (\d+)$/m.exec(readFileSync("/proc/stat", "utf8"))?.[1];
      bootMs = btime ? Number(btime) * 1000 : undefined;
    } catch {
      bootMs = undefined;
    }
  }
  return bootMs;
}

/** Linux's USER_HZ: the unit of /proc/PID/stat's start time (100 on every Linux architecture in use). */
const CLOCK_TICKS_PER_S = 100;
/** Slack for the start time's resolution (boot time has whole seconds). */
const START_SLACK_MS = 2000;

/**
 * When process `pid` started (ms since the epoch); undefined if it does not exist, has exited (a zombie
 * not yet reaped) or /proc cannot say.
 */
export function processStartMs(pid: number): number | undefined {
  const boot = bootTimeMs();
  if (boot === undefined) return undefined;
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, "utf8");
    // Fields after the command name (which may hold spaces and parentheses): state is field 3, start 22.
    const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
    if (fields[0] === "Z" || fields[0] === "X") return undefined; // exited, not yet reaped: gone
    const ticks = Number(fields[19]);
    return Number.isFinite(ticks) ? boot + (ticks * 1000) / CLOCK_TICKS_PER_S : undefined;
  } catch {
    return undefined;
  }
}

function pidExists(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (e) {
    // EPERM: it exists, owned by another user.
    return (e as NodeJS.ErrnoException).code === "EPERM";
  }
}

/**
 * Whether the process that owns a staging directory (PID `pid`, the directory last changed at
 * `changedMs`) is still running: this process always is; another PID must exist and, where its start time
 * is known, have started before the staging last changed (else the PID was reused).
 */
export function stagingOwnerAlive(pid: number, changedMs: number): boolean {
  if (pid === process.pid) return true;
  if (!pidExists(pid)) return false;
  const started = processStartMs(pid);
  // No start time: without /proc the PID decides; with it, the process exited (or is a zombie).
  if (started === undefined) return bootTimeMs() === undefined;
  return started <= changedMs + START_SLACK_MS;
}

/** A staging directory or file found on disk. */
export interface FoundStaging extends StagingName {
  path: string;
  ownerAlive: boolean;
  /** Last change of the staging itself, ms since the epoch. */
  changedMs: number;
}

/** Describes `name` in `dir` if it is staging; undefined otherwise (or if it vanished meanwhile). */
export function inspectStaging(dir: string, name: string): FoundStaging | undefined {
  const parsed = parseStagingName(name);
  if (!parsed) return undefined;
  const path = join(dir, name);
  try {
    const s = statSync(path);
    const changedMs = Math.max(s.mtimeMs, s.ctimeMs);
    return { ...parsed, path, changedMs, ownerAlive: stagingOwnerAlive(parsed.pid, changedMs) };
  } catch {
    return undefined;
  }
}

/**
 * Removes the stale staging beside `destination` (of that destination only): directories and files named
 * `.NAME.tmp-PID-*` or `.NAME.evicted-PID-*` whose owner is gone. Returns the paths removed. Errors are
 * not fatal (another process may be removing the same leftovers): what could not be removed is skipped.
 */
export async function cleanStaleStaging(destination: string): Promise<string[]> {
  const dir = dirname(destination);
  const target = basename(destination);
  let names: string[];
  try {
    names = await readdir(dir);
  } catch {
    return [];
  }
  const removed: string[] = [];
  for (const name of names) {
    if (!name.startsWith(`.${target}.`)) continue;
    const found = inspectStaging(dir, name);
    if (!found || found.target !== target || found.ownerAlive) continue;
    try {
      await rm(found.path, { recursive: true, force: true });
      removed.push(found.path);
    } catch {
      // Not removable now (permissions, a concurrent prune): left for cicada cache prune.
    }
  }
  return removed;
}

/** Staging paths this process is writing: removed if it exits (process.exit) before finishing them. */
const active = new Set<string>();
let exitHook = false;

/** Registers a staging path of this process (see {@link releaseStaging}). */
export function holdStaging(path: string): void {
  active.add(path);
  if (!exitHook) {
    exitHook = true;
    process.on("exit", () => {
      for (const p of active) {
        try {
          rmSync(p, { recursive: true, force: true });
        } catch {
          // Exiting: nothing more to do; cicada cache prune or a rerun will remove it.
        }
      }
    });
  }
}

/** The staging path is committed or removed. */
export function releaseStaging(path: string): void {
  active.delete(path);
}

/**
 * Size in bytes of a file or directory tree (0 for what vanished meanwhile), and its most recently
 * modified file (the one a failed write was writing).
 */
export async function treeBytes(path: string): Promise<{ bytes: number; newest?: string }> {
  let bytes = 0;
  let newest: { path: string; mtimeMs: number } | undefined;
  const walk = async (p: string): Promise<void> => {
    try {
      const s = await stat(p);
      if (!s.isDirectory()) {
        bytes += s.size;
        if (!newest || s.mtimeMs >= newest.mtimeMs) newest = { path: p, mtimeMs: s.mtimeMs };
        return;
      }
      for (const f of await readdir(p)) await walk(join(p, f));
    } catch {
      // vanished meanwhile
    }
  };
  await walk(path);
  return newest ? { bytes, newest: newest.path } : { bytes };
}
