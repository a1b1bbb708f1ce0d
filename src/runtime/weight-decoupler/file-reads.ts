// The retriever's positional reads of a weights file: a handle opened synchronously (see the NOTE) whose
// reads go through libuv's thread pool, and the loop that fills a view from a range, short reads
// continued, through the test hook when one is given, failures named by file, stage and bytes.
import { close as closeFd, openSync, read as readFd } from "node:fs";
import { isCicadaError } from "../../errors.js";
import { fileError } from "./retrieval-errors.js";
import type { RetrievalRange, RetrieverOptions } from "./retrieval-types.js";

/** An open file for positional reads. */
export interface FileHandle {
  read(target: Uint8Array, offset: number, length: number, position: number): Promise<{ bytesRead: number }>;
  close(): Promise<void>;
}

/**
 * Opens `path` synchronously; reads go through libuv's thread pool as usual. NOTE: an asynchronous open
 * waits for a thread of that pool, which a cold start keeps busy (onnxruntime's session creation among
 * others): measured 7-45 ms before the first read of resnet50's whole-model weights could be issued,
 * against 0.06 ms for the open itself.
 */
export function openForReading(path: string): FileHandle {
  const fd = openSync(path, "r");
  return {
    read: (target, offset, length, position) =>
      new Promise((resolve, reject) =>
        readFd(fd, target, offset, length, position, (e, bytesRead) =>
          e ? reject(e) : resolve({ bytesRead }),
        ),
      ),
    close: () => new Promise((resolve, reject) => closeFd(fd, (e) => (e ? reject(e) : resolve()))),
  };
}

/**
 * Fills `view` with the range's bytes from `done` bytes into the range (chunk `index` of the stage),
 * through `hook` when one is given. Throws E_BUNDLE_FILE on a failed read or a file that ends early.
 */
export async function readFully(
  handle: FileHandle,
  range: RetrievalRange,
  view: Uint8Array,
  done: number,
  index: number,
  hook: RetrieverOptions["readChunk"],
): Promise<void> {
  let filled = 0;
  while (filled < view.length) {
    const target = view.subarray(filled);
    const position = range.offset + done + filled;
    const read = async () => (await handle.read(target, 0, target.length, position)).bytesRead;
    let got: number;
    try {
      got = hook
        ? await hook({ stage: range.stage, path: range.path, position, target, index }, read)
        : await read();
    } catch (e) {
      if (isCicadaError(e)) throw e;
      throw fileError(
        range,
        `read of bytes ${position}..${position + target.length} failed (${(e as Error).message})`,
        e,
      );
    }
    if (got === 0) throw fileError(range, `is too short: it ends at byte ${position}`);
    filled += got;
  }
}
