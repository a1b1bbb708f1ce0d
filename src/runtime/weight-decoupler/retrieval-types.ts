// What the WeightDecoupler's retriever is given and what it reports: the byte range of each stage's
// weights, the options of a retrieval run, the lifecycle of one stage's retrieval and the totals. Types
// only, shared by the retriever and its parts (file reads, checksums, buffers) and by the runtime.
import type { TraceEvent } from "../../metrics/trace.js";
import type { RetrievalScheduler } from "./retrieval-scheduler.js";

/** One stage's weight bytes: `length` bytes at `offset` of `path`. */
export interface RetrievalRange {
  stage: number;
  path: string;
  offset: number;
  length: number;
  /** `crc32:` and 8 hex digits of the range's bytes; verified as they are read when given. */
  checksum?: string;
}

/** One positional read the retriever is about to make (what a {@link RetrieverOptions.readChunk} hook sees). */
export interface ChunkRead {
  stage: number;
  path: string;
  /** Absolute position in the file. */
  position: number;
  /** Where the bytes go; its length is the number of bytes asked for. */
  target: Uint8Array;
  /** Index of the chunk within the stage's range. */
  index: number;
}

/** How a WeightRetriever reads. */
export interface RetrieverOptions {
  /** `buffer`: each stage into its own buffer; `prefetch`: into the page cache only (nothing is kept). */
  mode: "buffer" | "prefetch";
  /** Bytes per positional read (default DEFAULTS.chunkBytes, 4 MiB). */
  chunkBytes?: number;
  /** Stages reading at once (default DEFAULTS.maxInFlight, 2). */
  maxInFlight?: number;
  /**
   * Chunks of one stage read at once (default 4). NOTE: a virtio disk here delivered 0.28 GB/s to one
   * read at a time and 0.9 GB/s to several: when the scheduler suspends every stage but one, that one
   * must still keep the disk busy.
   */
  lanes?: number;
  /** Buffer mode: stage buffers alive (retrieved or reading, not released) at most (default unlimited). */
  memoryBudgetBytes?: number;
  /** Retrieval policy (default: a PriorityScheduler on the same clock). */
  scheduler?: RetrievalScheduler;
  /** Receives one `R` event per retrieved stage. */
  onEvent?: (event: TraceEvent) => void;
  /** Clock in milliseconds (default: the trace clock). */
  now?: () => number;
  /** Test hook: replaces the positional read; `read` performs the default one. Returns the bytes read. */
  readChunk?: (chunk: ChunkRead, read: () => Promise<number>) => Promise<number>;
}

/** Lifecycle of one stage's retrieval: queued → reading → retrieved → released, or failed / aborted. */
export type RetrievalStatus = "queued" | "reading" | "retrieved" | "released" | "failed" | "aborted";

/** Totals of what a retriever has done. */
export interface RetrieverStats {
  bytesRead: number;
  chunks: number;
  /** Buffer mode: bytes of stage buffers alive now, and the most alive at once. */
  aliveBytes: number;
  peakAliveBytes: number;
}
