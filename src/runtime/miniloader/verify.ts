// Verification of MiniLoader's entries: every graph and data file carries the crc32 recorded at its build
// and is verified before anything computed from it is returned, once per file identity (the stamps of
// cache/integrity.ts). Graph files are small and verified at once, before onnxruntime parses them; data
// files are verified by retrieval as they pass (which marks them), or here. A corrupt entry is evicted, so
// that the next use rebuilds it, and E_BUNDLE_CHECKSUM thrown: it is never trusted.
import { evictEntry } from "../../cache/eviction.js";
import * as integrity from "../../cache/integrity.js";
import { checkedFilesOf, graphsOf, type MiniLoaderEntry } from "../../cache/miniloader-entry.js";

/**
 * True if the files of `graphs` (default: all of `entry`'s) were verified, in this process or by an
 * earlier one whose stamp still matches each file's identity.
 */
export function isVerified(entry: MiniLoaderEntry, graphs = graphsOf(entry)): boolean {
  return integrity.isVerified(entry.dir, checkedFilesOf(graphs));
}

/** Records that the files of `graphs` were verified (by retrieval, which reads them anyway). */
export function markVerified(entry: MiniLoaderEntry, graphs = graphsOf(entry)): void {
  integrity.markVerified(entry.dir, checkedFilesOf(graphs));
}

/**
 * Verifies the graph files of `graphs` (small: read at once) unless verified already, so that onnxruntime
 * never parses an unverified graph; their data files are verified by retrieval as they pass, or by
 * {@link verifyEntry}. A corrupt entry is evicted and E_BUNDLE_CHECKSUM thrown.
 */
export async function verifyGraphs(entry: MiniLoaderEntry, graphs = graphsOf(entry)): Promise<void> {
  const models = graphs.map((g) => ({ path: g.modelPath, checksum: g.modelChecksum }));
  await integrity.verifyFiles(entry.dir, models, () => evictEntry(entry));
}

/**
 * Verifies the files of `graphs` (default: all of `entry`'s) against their recorded crc32 unless they are
 * verified already. A corrupt entry is evicted (the next cold start rebuilds it) and E_BUNDLE_CHECKSUM
 * thrown.
 */
export async function verifyEntry(entry: MiniLoaderEntry, graphs = graphsOf(entry)): Promise<void> {
  await integrity.verifyFiles(entry.dir, checkedFilesOf(graphs), () => evictEntry(entry));
}
