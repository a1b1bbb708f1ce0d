// MiniLoader: construction without redundant work. A plain cold start re-parses the model, copies every
// weight out of it and re-runs graph optimisation (layout rewrites that reorder the weights) each time.
// MiniLoader does that work once per (bundle, onnxruntime version, CPU): each stage is optimised at level
// `all` and saved with its (reordered, optionally prepacked) weights in a data file beside it. A cold start
// then creates each stage session by path with optimisation disabled; onnxruntime maps the data file
// instead of copying it (measured: create 10-15 ms instead of ~250 ms for ResNet-50).
import { createHash, randomBytes } from "node:crypto";
import { existsSync, statSync } from "node:fs";
import { lstat, mkdir, readFile, rename, rm, stat } from "node:fs/promises";
import { totalmem } from "node:os";
import { join } from "node:path";
import { CicadaError } from "../errors.js";
import {
  bundleContentKey,
  readStageStructure,
  readStageWeights,
  stageExternalData,
  type Bundle,
} from "../format/bundle.js";
import { fileCrc32 } from "../format/checksum.js";
import { asCacheError, ensureSpace } from "../format/fs-errors.js";
import { cleanStaleStaging, holdStaging, releaseStaging, stagingPathFor } from "../format/staging.js";
import * as integrity from "./file-integrity.js";
import { writeFileAtomic } from "../format/atomic-output.js";
import { touchEntry } from "./cache-root.js";
import { cpuSignature } from "../util/cpu.js";
import { ORT_VERSION } from "../util/ort-version.js";

/** One optimised stage in the cache. */
export interface OptimizedStage {
  modelPath: string;
  /** crc32 of the optimised graph file, verified with the data file. */
  modelChecksum: string;
  dataPath: string;
  dataBytes: number;
  /** crc32 of the data file, checked by retrieval as it reads (a corrupt entry is never trusted). */
  dataChecksum: string;
}

/** A cache entry: every stage of one bundle optimised for this machine and runtime. */
export interface MiniLoaderEntry {
  dir: string;
  key: string;
  /** Unique to one build of the entry: an eviction removes the build it was asked to, never a rebuild. */
  buildId: string;
  stages: OptimizedStage[];
  /**
   * The whole model as one optimised graph (all stages merged), for the plan without a pipeline; only for
   * models of at most {@link wholeModelMaxBytes} of weights. Its data file is in execution order (see
   * execution-order.ts), so that it can run while the file is still being read.
   */
  whole?: OptimizedStage;
}

/**
 * Largest model (weight bytes) that also gets a whole-model optimised graph: a quarter of this machine's
 * memory, at most 8 GiB. NOTE: building it holds the weights in memory about three times (the merged
 * stages', onnxruntime's copy and its optimiser's rewrites; opt-1.3b's 4.9 GiB: 16 GiB peak, 106 s).
 * Larger models run the stage pipeline, which builds one stage at a time.
 */
export function wholeModelMaxBytes(): number {
  return Math.min(8 * 2 ** 30, Math.floor(totalmem() / 4));
}

const ENTRY_FILE = "entry.json";

/** Options that change what the optimiser saves; part of the cache key. */
export interface MiniLoaderOptions {
  /** Save prepacked MatMul/Gemm weights too (maps them instead of repacking at each create). */
  prepack?: boolean;
}

/**
 * The cache key: everything an entry depends on: the bundle's content (its manifest, which holds the
 * checksum of every stage graph and weight range), onnxruntime's version, the CPU and the options.
 */
export function miniLoaderKey(bundle: Bundle, options: MiniLoaderOptions = {}): string {
  const h = createHash("sha256");
  h.update(`cicada-miniloader-v3|ort ${ORT_VERSION}|${cpuSignature()}|prepack ${options.prepack ?? false}
`);
  h.update(bundleContentKey(bundle));
  return h.digest("hex").slice(0, 24);
}

function stageFileNames(index: number): { model: string; data: string } {
  const n = String(index).padStart(3, "0");
  return { model: `stage-${n}.onnx`, data: `stage-${n}.data` };
}

const WHOLE_FILES = { model: "whole.onnx", data: "whole.data" };

/**
 * Optimises a structure graph with its in-memory weights into `dir`: level `all`, saved with its
 * (reordered, optionally prepacked) weights in a data file beside it.
 */
async function optimizeInto(
  dir: string,
  names: { model: string; data: string },
  structure: Uint8Array,
  externalData: { path: string; data: Uint8Array }[],
  options: MiniLoaderOptions,
  executionOrder = false,
): Promise<OptimizedStage> {
  const entries: Record<string, string> = {
    optimized_model_external_initializers_file_name: names.data,
    optimized_model_external_initializers_min_size_in_bytes: "1024",
  };
  if (options.prepack) entries.save_external_prepacked_constant_initializers = "1";
  // Builds only: onnxruntime and protobuf code stay out of a cold start that finds its entry.
  const { createSession, releaseSession } = await import("./ort-adapter.js");
  const session = await createSession(structure, {
    graphOptimizationLevel: "all",
    optimizedModelFilePath: join(dir, names.model),
    externalData,
    sessionConfigEntries: entries,
    // NOTE: onnxruntime warns that an `all`-optimised graph is hardware specific; the cache key says so.
    logSeverityLevel: 3,
  });
  await releaseSession(session);
  const dataPath = join(dir, names.data);
  // A graph whose weights are all small keeps them inline: give it an empty data file for uniformity.
  if (!existsSync(dataPath)) await writeFileAtomic(dataPath, new Uint8Array(0));
  else if (executionOrder) {
    const { layOutInExecutionOrder } = await import("./execution-order.js");
    await layOutInExecutionOrder(join(dir, names.model), names.data);
  }
  return {
    modelPath: join(dir, names.model),
    modelChecksum: await fileCrc32(join(dir, names.model)),
    dataPath,
    dataBytes: (await stat(dataPath)).size,
    dataChecksum: await fileCrc32(dataPath),
  };
}

/** Optimises one stage into `dir`. */
async function optimizeStage(
  bundle: Bundle,
  index: number,
  dir: string,
  options: MiniLoaderOptions,
): Promise<OptimizedStage> {
  const stage = bundle.manifest.stages[index]!;
  const [weights, structure] = await Promise.all([
    readStageWeights(bundle, index),
    readStageStructure(bundle, index),
  ]);
  return optimizeInto(dir, stageFileNames(index), structure, stageExternalData(stage, weights), options);
}

/** Optimises the whole model (every stage merged) into `dir`. */
async function optimizeWhole(
  bundle: Bundle,
  dir: string,
  options: MiniLoaderOptions,
): Promise<OptimizedStage> {
  const { mergeStages } = await import("./stage-merge.js");
  const merged = await mergeStages(bundle, 0, bundle.manifest.stages.length - 1);
  return optimizeInto(dir, WHOLE_FILES, merged.model, merged.externalData, options, true);
}

/** How entry.json records one optimised graph. */
interface IndexedFiles {
  model: string;
  modelChecksum: string;
  data: string;
  dataBytes: number;
  dataChecksum: string;
  /** `execution-order`: the data file is laid out in the order the nodes read it (the whole graph's is). */
  layout?: string;
}

const EXECUTION_ORDER = "execution-order";

const CRC32 = /^crc32:[0-9a-f]{8}$/;

/**
 * An indexed graph's files, if entry.json names exactly the files expected, both are plain files (no
 * symbolic link out of the entry) and the data file has the recorded size.
 */
function indexedFiles(
  dir: string,
  f: IndexedFiles | undefined,
  names: { model: string; data: string },
): OptimizedStage | undefined {
  if (!f || f.model !== names.model || f.data !== names.data) return undefined;
  if (!CRC32.test(String(f.modelChecksum)) || !CRC32.test(String(f.dataChecksum))) return undefined;
  const modelPath = join(dir, f.model);
  const dataPath = join(dir, f.data);
  if (!integrity.isPlainFile(modelPath) || !integrity.isPlainFile(dataPath)) return undefined;
  if (statSync(dataPath).size !== f.dataBytes) return undefined;
  return {
    modelPath,
    modelChecksum: f.modelChecksum,
    dataPath,
    dataBytes: f.dataBytes,
    dataChecksum: f.dataChecksum,
  };
}

/**
 * Reads an entry's index (of a bundle with `stageCount` stages) and checks it names the expected files
 * with the recorded sizes; undefined if unusable (the caller rebuilds it).
 */
async function loadEntry(dir: string, key: string, stageCount: number): Promise<MiniLoaderEntry | undefined> {
  try {
    // An entry is a directory of the cache itself, never a link out of it.
    if (!(await lstat(dir)).isDirectory()) return undefined;
    const json = JSON.parse(await readFile(join(dir, ENTRY_FILE), "utf8")) as {
      key: string;
      buildId?: string;
      stages: IndexedFiles[];
      whole?: IndexedFiles;
    };
    if (json.key !== key || !Array.isArray(json.stages) || json.stages.length !== stageCount)
      return undefined;
    const buildId = String(json.buildId ?? "");
    const stages: OptimizedStage[] = [];
    for (const [i, s] of json.stages.entries()) {
      const found = indexedFiles(dir, s, stageFileNames(i));
      if (!found) return undefined;
      stages.push(found);
    }
    if (!json.whole) return { dir, key, buildId, stages };
    // An entry from before whole graphs were laid out in execution order is rebuilt.
    if (json.whole.layout !== EXECUTION_ORDER) return undefined;
    const whole = indexedFiles(dir, json.whole, WHOLE_FILES);
    return whole ? { dir, key, buildId, stages, whole } : undefined;
  } catch {
    return undefined;
  }
}

/** Where MiniLoader keeps its entries under a cache root. */
export function miniLoaderDir(cacheRoot: string): string {
  return join(cacheRoot, "miniloader");
}

/**
 * The optimised stages of `bundle` for this machine, building them on a miss (the cost of one plain cold
 * start). Safe under concurrent processes: an entry is built in a private directory and renamed into
 * place; a loser of the race uses the winner's entry. An entry that fails its size check is rebuilt.
 */
/** Whether MiniLoader builds `bundle` a whole-model graph too (see {@link wholeModelMaxBytes}). */
export function getsWholeGraph(bundle: Bundle): boolean {
  return bundle.manifest.totalWeightBytes <= wholeModelMaxBytes();
}

/** The entry at `dir` if usable for `bundle`: one without the whole graph its size now gets is rebuilt. */
async function usableEntry(dir: string, key: string, bundle: Bundle): Promise<MiniLoaderEntry | undefined> {
  const existing = await loadEntry(dir, key, bundle.manifest.stages.length);
  if (!existing || (!existing.whole && getsWholeGraph(bundle))) return undefined;
  touchEntry(dir);
  return existing;
}

/** The usable entry of `bundle` in the cache, without building one (undefined when there is none). */
export async function findOptimizedStages(
  bundle: Bundle,
  cacheRoot: string,
  options: MiniLoaderOptions = {},
): Promise<MiniLoaderEntry | undefined> {
  const key = miniLoaderKey(bundle, options);
  return usableEntry(join(miniLoaderDir(cacheRoot), key), key, bundle);
}

export async function ensureOptimizedStages(
  bundle: Bundle,
  cacheRoot: string,
  options: MiniLoaderOptions & { onStage?: (done: number, total: number) => void } = {},
): Promise<{ entry: MiniLoaderEntry; built: boolean }> {
  const key = miniLoaderKey(bundle, options);
  const dir = join(miniLoaderDir(cacheRoot), key);
  const stageCount = bundle.manifest.stages.length;
  const existing = await usableEntry(dir, key, bundle);
  if (existing) return { entry: existing, built: false };
  try {
    await rm(dir, { recursive: true, force: true });
    await mkdir(miniLoaderDir(cacheRoot), { recursive: true });
    // A build killed before it was renamed into place left its staging: removed before a new one starts.
    await cleanStaleStaging(dir);
  } catch (e) {
    throw await asCacheError(e, dir);
  }
  // The disk it needs, before anything is written: every stage's optimised weights, and the whole
  // graph's copy of them when the model gets one (onnxruntime's layouts are about the weights' size).
  const wholeToo = getsWholeGraph(bundle);
  await ensureSpace(
    miniLoaderDir(cacheRoot),
    bundle.manifest.totalWeightBytes * (wholeToo ? 2 : 1),
    `MiniLoader's cache entry for ${bundle.dir}`,
  );
  const tmp = stagingPathFor(dir);
  holdStaging(tmp);
  try {
    await mkdir(tmp);
    const stages: OptimizedStage[] = [];
    const total = bundle.manifest.stages.length;
    for (let i = 0; i < total; i++) {
      stages.push(await optimizeStage(bundle, i, tmp, options));
      options.onStage?.(i + 1, total);
    }
    const whole = wholeToo ? await optimizeWhole(bundle, tmp, options) : undefined;
    const indexed = (s: OptimizedStage, names: { model: string; data: string }): IndexedFiles => ({
      ...names,
      modelChecksum: s.modelChecksum,
      dataBytes: s.dataBytes,
      dataChecksum: s.dataChecksum,
    });
    const index = {
      key,
      buildId: randomBytes(8).toString("hex"),
      options: { prepack: options.prepack ?? false },
      ort: ORT_VERSION,
      cpu: cpuSignature(),
      bundle: bundle.dir,
      stages: stages.map((s, i) => indexed(s, stageFileNames(i))),
      ...(whole ? { whole: { ...indexed(whole, WHOLE_FILES), layout: EXECUTION_ORDER } } : {}),
    };
    await writeFileAtomic(join(tmp, ENTRY_FILE), JSON.stringify(index, null, 2));
    try {
      await rename(tmp, dir);
    } catch (e) {
      const winner = await loadEntry(dir, key, stageCount);
      if (!winner)
        throw new CicadaError(
          "E_RUNTIME",
          `cannot install MiniLoader cache entry ${dir}: ${(e as Error).message}`,
          { cause: e },
        );
      await rm(tmp, { recursive: true, force: true });
      return { entry: winner, built: false };
    }
  } catch (e) {
    await rm(tmp, { recursive: true, force: true }).catch(() => undefined);
    throw await asCacheError(e, dir);
  } finally {
    releaseStaging(tmp);
  }
  const entry = await loadEntry(dir, key, stageCount);
  if (!entry)
    throw new CicadaError("E_RUNTIME", `MiniLoader cache entry ${dir} vanished after it was written`);
  // Its checksums were computed from the files just written: they are verified.
  markVerified(entry);
  return { entry, built: true };
}

/** Every optimised graph of an entry: the stages, then the whole model if there is one. */
export function graphsOf(entry: MiniLoaderEntry): OptimizedStage[] {
  return entry.whole ? [...entry.stages, entry.whole] : entry.stages;
}

/** The files of `graphs` with their recorded checksums: graph and data file of each. */
function checkedFiles(graphs: readonly OptimizedStage[]): integrity.CheckedFile[] {
  return graphs.flatMap((g) => [
    { path: g.modelPath, checksum: g.modelChecksum },
    { path: g.dataPath, checksum: g.dataChecksum },
  ]);
}

/**
 * True if the files of `graphs` (default: all of `entry`'s) were verified, in this process or by an
 * earlier one whose stamp still matches each file's identity (see file-integrity.ts).
 */
export function isVerified(entry: MiniLoaderEntry, graphs = graphsOf(entry)): boolean {
  return integrity.isVerified(entry.dir, checkedFiles(graphs));
}

/** Records that the files of `graphs` were verified (by retrieval, which reads them anyway). */
export function markVerified(entry: MiniLoaderEntry, graphs = graphsOf(entry)): void {
  integrity.markVerified(entry.dir, checkedFiles(graphs));
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
 * thrown: it is never trusted.
 */
export async function verifyEntry(entry: MiniLoaderEntry, graphs = graphsOf(entry)): Promise<void> {
  await integrity.verifyFiles(entry.dir, checkedFiles(graphs), () => evictEntry(entry));
}

/** Builds evicted by this process (by directory: copies of one build under other cache roots differ). */
const evicted = new Set<string>();

/**
 * Removes a cache entry found corrupt, so that the next cold start rebuilds it. Only that build: a failure
 * noticed late (or in another process) must not remove the rebuilt entry now in its place. The entry is
 * moved aside atomically, then checked; a rebuild moved aside by mistake is put back if nothing took its
 * place meanwhile.
 */
export async function evictEntry(entry: MiniLoaderEntry): Promise<void> {
  // Several failures of one build (its stages' checks) evict it once.
  if (entry.buildId) {
    if (evicted.has(`${entry.dir}|${entry.buildId}`)) return;
    evicted.add(`${entry.dir}|${entry.buildId}`);
  }
  const aside = stagingPathFor(entry.dir, "evicted");
  try {
    await rename(entry.dir, aside);
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === "ENOENT") return;
    evicted.delete(`${entry.dir}|${entry.buildId}`);
    throw e;
  }
  const moved = await loadEntry(aside, entry.key, entry.stages.length);
  if (moved && moved.buildId !== entry.buildId) {
    const restored = await rename(aside, entry.dir).then(
      () => true,
      () => false,
    );
    if (restored) return;
  }
  await rm(aside, { recursive: true, force: true });
}
