// MiniLoader's entry for a loader that has no retrieval unit to verify the cached weights as they pass
// (mini, and any stage reload): verified up front, once per process; a corrupt entry is removed and rebuilt,
// never used.
import { isCicadaError } from "../../errors.js";
import type { Bundle } from "../../format/bundle.js";
import { ensureOptimizedStages } from "../miniloader/ensure.js";
import { verifyEntry } from "../miniloader/verify.js";
import type { MiniLoaderEntry } from "../../cache/miniloader-entry.js";

const STAGES = { forms: ["stages"] } as const;

/** The bundle's MiniLoader entry, built if missing, every stage file verified. */
export async function verifiedEntry(bundle: Bundle, cacheRoot: string): Promise<MiniLoaderEntry> {
  const { entry } = await ensureOptimizedStages(bundle, cacheRoot, STAGES);
  try {
    await verifyEntry(entry, entry.stages);
    return entry;
  } catch (e) {
    // Corrupt (and removed), or removed while it was read by another's eviction: rebuilt, once.
    const gone = (e as NodeJS.ErrnoException | undefined)?.code === "ENOENT";
    if (!(isCicadaError(e, "E_BUNDLE_CHECKSUM") || gone)) throw e;
    const rebuilt = (await ensureOptimizedStages(bundle, cacheRoot, STAGES)).entry;
    await verifyEntry(rebuilt, rebuilt.stages);
    return rebuilt;
  }
}
