// `cicada cache [list] | prune`: what the cache root holds (generated zoo models and bundles, MiniLoader
// entries, PISeL stage files, ort-best models) with each entry's size and the total, and removing what can
// no longer be used, went unused, or is least recently used beyond a size.
import type { Command } from "commander";
import { CicadaError } from "../../errors.js";
import { CACHE_KINDS } from "../../cache/layout.js";
import { listCache, type CacheEntry } from "../../cache/listing.js";
import { pruneCache, totalBytes } from "../../cache/prune.js";
import { defaultCacheRoot } from "../../config.js";
import { intFlag } from "../flags.js";
import { formatBytes, table } from "../format-table.js";

function originColumn(e: CacheEntry): string {
  if (e.staging) {
    const owner = e.staging.ownerAlive ? "running: a write in progress" : "gone: left over, prune removes it";
    return `staging of ${e.staging.target} by PID ${e.staging.pid} (${owner})`;
  }
  return e.origin ? `${e.origin}${e.originExists ? "" : " (gone)"}${e.current ? "" : " (superseded)"}` : "–";
}

function describe(entries: CacheEntry[], nowMs = Date.now()): string {
  const rows = entries.map((e) => [
    e.kind,
    e.dir,
    formatBytes(e.bytes),
    `${((nowMs - e.lastUsedMs) / 86_400_000).toFixed(1)} d`,
    e.inUseBy.length ? `PID ${e.inUseBy.join(", ")}` : "–",
    originColumn(e),
  ]);
  const sum = (list: CacheEntry[]) => formatBytes(totalBytes(list));
  const kept = entries.filter((e) => !e.staging);
  const byKind = CACHE_KINDS.map((k) => [k, kept.filter((e) => e.kind === k)] as const)
    .filter(([, list]) => list.length > 0)
    .map(([k, list]) => `${k} ${sum(list)}`);
  const staging = entries.filter((e) => e.staging);
  const leftovers = staging.filter((e) => !e.staging!.ownerAlive);
  const stagingLine = staging.length
    ? `; ${staging.length} staging (${sum(staging)}), ${leftovers.length} of them left by processes that are gone (${sum(leftovers)})`
    : "";
  const kinds = byKind.length ? ` (${byKind.join(", ")})` : "";
  return `${table(["kind", "directory", "size", "unused for", "in use by", "origin"], rows)}${kept.length} entries, ${sum(kept)}${kinds}${stagingLine}; total ${sum(entries)}\n`;
}

const UNITS: Record<string, number> = { "": 1, K: 2 ** 10, M: 2 ** 20, G: 2 ** 30, T: 2 ** 40 };

/** Parses a size: bytes, or a number with K, M, G or T (binary: KiB, MiB, …; `B` and `iB` optional). */
export function sizeFlag(flag: string, value: string): number {
  const m = /^(\d+(?:\.\d+)?)\s*([KMGT]?)(?:i?B)?$/i.exec(value.trim());
  const bytes = m ? Math.floor(Number(m[1]) * UNITS[m[2]!.toUpperCase()]!) : NaN;
  if (!Number.isSafeInteger(bytes) || bytes < 0) {
    throw new CicadaError(
      "E_USAGE",
      `${flag} must be a size in bytes, or with K, M, G or T (e.g. 20G), found '${value}'`,
    );
  }
  return bytes;
}

/** Registers `cicada cache`. */
export function registerCache(program: Command): void {
  const cache = program
    .command("cache")
    .description("list or prune the cache of generated models and derived forms ($CICADA_CACHE)");
  cache
    .command("list", { isDefault: true })
    .description(
      "list the cache's entries: kind, size (and the total), last use, the live processes using it, origin; and staging of writes (its owner's PID, running or gone)",
    )
    .option("--root <dir>", "cache root (default: $CICADA_CACHE, else ~/.cache/cicada)")
    .option("--json", "machine-readable output")
    .action(async (opts: { root?: string; json?: boolean }) => {
      const entries = await listCache(opts.root ?? defaultCacheRoot());
      process.stdout.write(opts.json ? `${JSON.stringify(entries, null, 2)}\n` : describe(entries));
    });
  cache
    .command("prune")
    .description(
      "remove entries that can never be used again (--orphans: origin gone or superseded), unused for N days, or least recently used until the cache fits in --max-bytes; with any, staging left by processes that are gone. Never an entry a live process writes or maps",
    )
    .option("--root <dir>", "cache root (default: $CICADA_CACHE, else ~/.cache/cicada)")
    .option(
      "--orphans",
      "entries derived from a bundle or model that no longer exists, or superseded (other onnxruntime, CPU or content)",
    )
    .option("--unused-days <n>", "entries no cold start used for more than N days")
    .option(
      "--max-bytes <size>",
      "then the least recently used entries until the cache takes at most this size (bytes, or 500M, 20G, …)",
    )
    .option("--sources", "with --max-bytes: zoo models and bundles may go too (default: derived forms only)")
    .option("--dry-run", "list what would be removed, remove nothing")
    .option("--json", "machine-readable output")
    .action(
      async (opts: {
        root?: string;
        orphans?: boolean;
        unusedDays?: string;
        maxBytes?: string;
        sources?: boolean;
        dryRun?: boolean;
        json?: boolean;
      }) => {
        if (opts.sources && opts.maxBytes === undefined)
          throw new CicadaError("E_USAGE", "cache prune: --sources only applies with --max-bytes");
        if (!opts.orphans && opts.unusedDays === undefined && opts.maxBytes === undefined) {
          throw new CicadaError(
            "E_USAGE",
            "cache prune: say what to remove: --orphans, --unused-days N and/or --max-bytes SIZE",
          );
        }
        const root = opts.root ?? defaultCacheRoot();
        const maxBytes = opts.maxBytes === undefined ? undefined : sizeFlag("--max-bytes", opts.maxBytes);
        const before = totalBytes(await listCache(root));
        const removed = await pruneCache(root, {
          orphans: opts.orphans ?? false,
          ...(opts.unusedDays !== undefined
            ? { unusedDays: intFlag("--unused-days", opts.unusedDays, 0) }
            : {}),
          ...(maxBytes !== undefined ? { maxBytes, sources: opts.sources ?? false } : {}),
          dryRun: opts.dryRun ?? false,
        });
        const after = before - totalBytes(removed);
        const dryRun = opts.dryRun ?? false;
        if (opts.json) {
          const summary = { dryRun, removed, bytesBefore: before, bytesAfter: after, maxBytes };
          process.stdout.write(`${JSON.stringify(summary, null, 2)}\n`);
          return;
        }
        process.stdout.write(describe(removed));
        const size = `the cache ${dryRun ? "would take" : "takes"} ${formatBytes(after)} (was ${formatBytes(before)})`;
        const over =
          maxBytes !== undefined && after > maxBytes
            ? `; still over ${formatBytes(maxBytes)}: what is left is in use${opts.sources ? "" : " or a source (--sources lets those go)"}`
            : "";
        process.stdout.write(`${dryRun ? "(dry run: nothing was removed) " : "removed; "}${size}${over}\n`);
      },
    );
}
