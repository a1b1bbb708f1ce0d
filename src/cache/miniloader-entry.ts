// MiniLoader's cache entries as data: the key (what an entry depends on), the directory layout, and the
// index (entry.json) that names each optimised graph's files with their sizes and checksums, read back and
// validated before anything in the entry is used. An entry holds up to two forms of one bundle: its stages
// (one optimised graph per stage, for the pipeline) and its whole model (one graph, for the plan without a
// pipeline); each form's data files are a copy of the weights, so an entry holds only the forms asked for.
// Building them (onnxruntime) is runtime/miniloader/'s job; nothing here loads onnxruntime.
import { lstat, readFile } from "node:fs/promises";
import { statSync } from "node:fs";
import { join } from "node:path";
import { bundleContentKey, type Bundle } from "../format/bundle.js";
import { cpuSignature } from "../util/cpu.js";
import { ORT_VERSION } from "../util/ort-version.js";
import { isPlainFile, type CheckedFile } from "./integrity.js";
import { entryKey, kindDir, stageStem } from "./layout.js";

/** One optimised graph in the cache (a stage, or the whole model). */
export interface OptimizedStage {
  modelPath: string;
  /** crc32 of the optimised graph file, verified with the data file. */
  modelChecksum: string;
  dataPath: string;
  dataBytes: number;
  /** crc32 of the data file, checked by retrieval as it reads (a corrupt entry is never trusted). */
  dataChecksum: string;
}

/** A cache entry: one bundle's optimised graphs for this machine and runtime. */
export interface MiniLoaderEntry {
  dir: string;
  key: string;
  /** Unique to one build of the entry: an eviction removes the build it was asked to, never a rebuild. */
  buildId: string;
  /** One optimised graph per stage; empty when the entry has no stage form (see {@link MiniLoaderForm}). */
  stages: OptimizedStage[];
  /**
   * The whole model as one optimised graph (all stages merged), for the plan without a pipeline. Its data
   * file is in execution order (see runtime/execution-order.ts), so that it can run while the file is
   * still being read.
   */
  whole?: OptimizedStage;
}

/** The forms an entry may hold: `stages` (the pipeline's graphs) and `whole` (one graph of the model). */
export type MiniLoaderForm = "stages" | "whole";

/** Options that change what the optimiser saves; part of the cache key. */
export interface MiniLoaderOptions {
  /** Save prepacked MatMul/Gemm weights too (maps them instead of repacking at each create). */
  prepack?: boolean;
}

/** The index of an entry. */
export const ENTRY_FILE = "entry.json";

/** Where MiniLoader keeps its entries under a cache root. */
export function miniLoaderDir(cacheRoot: string): string {
  return kindDir(cacheRoot, "miniloader");
}

/**
 * The cache key: everything an entry depends on: the bundle's content (its manifest, which holds the
 * checksum of every stage graph and weight range), onnxruntime's version, the CPU, the options and the
 * entry format (v4: forms built separately).
 */
export function miniLoaderKey(bundle: Bundle, options: MiniLoaderOptions = {}): string {
  return entryKey(
    `cicada-miniloader-v4|ort ${ORT_VERSION}|${cpuSignature()}|prepack ${options.prepack ?? false}\n`,
    bundleContentKey(bundle),
  );
}

/** The directory of `bundle`'s entry under `cacheRoot`. */
export function entryDirOf(bundle: Bundle, cacheRoot: string, options: MiniLoaderOptions = {}): string {
  return join(miniLoaderDir(cacheRoot), miniLoaderKey(bundle, options));
}

/** The file names of one optimised graph: stage `index`'s, or the whole model's. */
export function graphFileNames(graph: number | "whole"): { model: string; data: string } {
  const stem = graph === "whole" ? "whole" : stageStem(graph);
  return { model: `${stem}.onnx`, data: `${stem}.data` };
}

/** How entry.json records one optimised graph. */
export interface IndexedFiles {
  model: string;
  modelChecksum: string;
  data: string;
  dataBytes: number;
  dataChecksum: string;
  /** `execution-order`: the data file is laid out in the order the nodes read it (the whole graph's is). */
  layout?: string;
}

/** The layout of the whole graph's data file (an index without it is from an older build: rebuilt). */
export const EXECUTION_ORDER = "execution-order";

/** entry.json. */
export interface EntryIndex {
  key: string;
  buildId: string;
  options: Required<MiniLoaderOptions>;
  ort: string;
  cpu: string;
  /** The bundle's directory (its origin, for `cicada cache`). */
  bundle: string;
  stages?: IndexedFiles[];
  whole?: IndexedFiles;
}

/** The index record of an optimised graph built as `graph` (its recorded files, not where it was built). */
export function indexedFilesOf(graph: number | "whole", built: OptimizedStage): IndexedFiles {
  return {
    ...graphFileNames(graph),
    modelChecksum: built.modelChecksum,
    dataBytes: built.dataBytes,
    dataChecksum: built.dataChecksum,
    ...(graph === "whole" ? { layout: EXECUTION_ORDER } : {}),
  };
}

/** A new entry's index, with the forms built (`stages` and/or `whole`). */
export function newEntryIndex(
  bundle: Bundle,
  key: string,
  buildId: string,
  options: MiniLoaderOptions,
  built: { stages?: OptimizedStage[]; whole?: OptimizedStage },
): EntryIndex {
  return {
    key,
    buildId,
    options: { prepack: options.prepack ?? false },
    ort: ORT_VERSION,
    cpu: cpuSignature(),
    bundle: bundle.dir,
    ...(built.stages ? { stages: built.stages.map((s, i) => indexedFilesOf(i, s)) } : {}),
    ...(built.whole ? { whole: indexedFilesOf("whole", built.whole) } : {}),
  };
}

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
  if (!isPlainFile(modelPath) || !isPlainFile(dataPath)) return undefined;
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
 * Reads the entry at `dir` (of a bundle with `stageCount` stages, key `key`) and checks its index names
 * the expected files with the recorded sizes, form by form; undefined if unusable (the caller rebuilds
 * it). An entry without any usable form is unusable.
 */
export async function readEntry(
  dir: string,
  key: string,
  stageCount: number,
): Promise<MiniLoaderEntry | undefined> {
  try {
    // An entry is a directory of the cache itself, never a link out of it.
    if (!(await lstat(dir)).isDirectory()) return undefined;
    const json = JSON.parse(await readFile(join(dir, ENTRY_FILE), "utf8")) as Partial<EntryIndex>;
    if (json.key !== key) return undefined;
    const buildId = String(json.buildId ?? "");
    const stages: OptimizedStage[] = [];
    if (json.stages !== undefined) {
      if (!Array.isArray(json.stages) || json.stages.length !== stageCount) return undefined;
      for (const [i, s] of json.stages.entries()) {
        const found = indexedFiles(dir, s, graphFileNames(i));
        if (!found) return undefined;
        stages.push(found);
      }
    }
    if (json.whole === undefined) return stages.length ? { dir, key, buildId, stages } : undefined;
    // A whole graph not laid out in execution order is from an older build: rebuilt.
    if (json.whole.layout !== EXECUTION_ORDER) return undefined;
    const whole = indexedFiles(dir, json.whole, graphFileNames("whole"));
    return whole ? { dir, key, buildId, stages, whole } : undefined;
  } catch {
    return undefined;
  }
}

/** The build id recorded in the entry at `dir` ("" if it has none or is unreadable). */
export async function buildIdAt(dir: string): Promise<string> {
  try {
    const json = JSON.parse(await readFile(join(dir, ENTRY_FILE), "utf8")) as { buildId?: unknown };
    return typeof json.buildId === "string" ? json.buildId : "";
  } catch {
    return "";
  }
}

/** Whether `entry` holds `form`. */
export function hasForm(entry: MiniLoaderEntry, form: MiniLoaderForm): boolean {
  return form === "whole" ? entry.whole !== undefined : entry.stages.length > 0;
}

/** Every optimised graph of an entry: the stages, then the whole model if there is one. */
export function graphsOf(entry: MiniLoaderEntry): OptimizedStage[] {
  return entry.whole ? [...entry.stages, entry.whole] : entry.stages;
}

/** The files of `graphs` with their recorded checksums: graph and data file of each. */
export function checkedFilesOf(graphs: readonly OptimizedStage[]): CheckedFile[] {
  return graphs.flatMap((g) => [
    { path: g.modelPath, checksum: g.modelChecksum },
    { path: g.dataPath, checksum: g.dataChecksum },
  ]);
}
