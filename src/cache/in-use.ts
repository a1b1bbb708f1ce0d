// Which live processes use a cache directory: those that map one of its files (onnxruntime maps
// MiniLoader's and ort-best's data files for as long as a model stays loaded), read from /proc/PID/maps.
// Pruning keeps such an entry: removing it would not break the mapping, but the loaded model would see
// its files gone and reload, rebuilding the entry on its next request. Elsewhere than Linux (no /proc),
// or for processes of other users whose maps cannot be read, nothing is known: only staging says then.
import { readdirSync, readFileSync } from "node:fs";
import { resolve, sep } from "node:path";

/** The files under `root` that live processes map, each with the PIDs mapping it. */
export function mappedFilesUnder(root: string): Map<string, number[]> {
  const prefix = resolve(root) + sep;
  const out = new Map<string, number[]>();
  let pids: string[];
  try {
    pids = readdirSync("/proc").filter((n) => /^\d+$/.test(n));
  } catch {
    return out;
  }
  for (const pid of pids) {
    let maps: string;
    try {
      maps = readFileSync(`/proc/${pid}/maps`, "utf8");
    } catch {
      continue; // exited meanwhile, or not ours to read
    }
    const seen = new Set<string>();
    for (const line of maps.split("\n")) {
      // address perms offset dev inode path: the path is what follows the fifth field.
      const at = line.indexOf(prefix);
      if (at < 0) continue;
      const path = line.slice(at).replace(/ \(deleted\)$/, "");
      if (seen.has(path)) continue;
      seen.add(path);
      const list = out.get(path) ?? [];
      list.push(Number(pid));
      out.set(path, list);
    }
  }
  return out;
}

/** The PIDs of `mapped` (see {@link mappedFilesUnder}) that map a file inside `dir`. */
export function pidsMapping(mapped: Map<string, number[]>, dir: string): number[] {
  const prefix = resolve(dir) + sep;
  const pids = new Set<number>();
  for (const [path, list] of mapped) if (path.startsWith(prefix)) for (const p of list) pids.add(p);
  return [...pids].sort((a, b) => a - b);
}
