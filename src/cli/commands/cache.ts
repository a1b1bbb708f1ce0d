// `cicada cache [list] | prune`: what the cache root holds (generated zoo models and bundles, MiniLoader
// entries, PISeL stage files, ort-best models), and removing what can no longer be used or went unused.
import type { Command } from "commander";
import { CicadaError } from "../../errors.js";
import { listCache, type CacheEntry } from "../../cache/listing.js";
import { pruneCache } from "../../cache/prune.js";
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
    originColumn(e),
  ]);
  const sum = (list: CacheEntry[]) => formatBytes(list.reduce((n, e) => n + e.bytes, 0));
  const staging = entries.filter((e) => e.staging);
  const leftovers = staging.filter((e) => !e.staging!.ownerAlive);
  const stagingLine = staging.length
    ? `; ${staging.length} staging (${sum(staging)}), ${leftovers.length} of them left by processes that are gone (${sum(leftovers)})`
    : "";
  return `${table(["kind", "directory", "size", "unused for", "origin"], rows)}${entries.length - staging.length} entries, ${sum(entries.filter((e) => !e.staging))}${stagingLine}\n`;
}

/** Registers `cicada cache`. */
export function registerCache(program: Command): void {
  const cache = program
    .command("cache")
    .description("list or prune the cache of generated models and derived forms ($CICADA_CACHE)");
  cache
    .command("list", { isDefault: true })
    .description(
      "list the cache's entries: kind, size, last use, origin; and staging of writes (its owner's PID, running or gone)",
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
      "remove entries that can never be used again (--orphans: origin gone or superseded) or unused for N days; with either, staging left by processes that are gone",
    )
    .option("--root <dir>", "cache root (default: $CICADA_CACHE, else ~/.cache/cicada)")
    .option(
      "--orphans",
      "entries derived from a bundle or model that no longer exists, or superseded (other onnxruntime, CPU or content)",
    )
    .option("--unused-days <n>", "entries no cold start used for more than N days")
    .option("--dry-run", "list what would be removed, remove nothing")
    .option("--json", "machine-readable output")
    .action(
      async (opts: {
        root?: string;
        orphans?: boolean;
        unusedDays?: string;
        dryRun?: boolean;
        json?: boolean;
      }) => {
        if (!opts.orphans && opts.unusedDays === undefined) {
          throw new CicadaError(
            "E_USAGE",
            "cache prune: say what to remove: --orphans and/or --unused-days N",
          );
        }
        const removed = await pruneCache(opts.root ?? defaultCacheRoot(), {
          orphans: opts.orphans ?? false,
          ...(opts.unusedDays !== undefined
            ? { unusedDays: intFlag("--unused-days", opts.unusedDays, 0) }
            : {}),
          dryRun: opts.dryRun ?? false,
        });
        if (opts.json)
          process.stdout.write(`${JSON.stringify({ dryRun: opts.dryRun ?? false, removed }, null, 2)}\n`);
        else {
          process.stdout.write(describe(removed));
          process.stdout.write(opts.dryRun ? "(dry run: nothing was removed)\n" : "removed\n");
        }
      },
    );
}
