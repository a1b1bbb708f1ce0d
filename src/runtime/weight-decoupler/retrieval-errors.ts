// The two ways a weight retrieval fails besides a checksum (ordered-checksum.ts): the caller used the
// retriever wrongly (E_USAGE), or the weights file cannot be opened or read as the range says
// (E_BUNDLE_FILE, naming the file, the stage and its bytes).
import { CicadaError } from "../../errors.js";
import type { RetrievalRange } from "./retrieval-types.js";

/** A misuse of the retriever (bad options or ranges, calls out of order). */
export function usageError(message: string): CicadaError {
  return new CicadaError("E_USAGE", `weight retriever: ${message}`);
}

/** The range's file cannot be opened or read: `what` says how, `cause` is the system error. */
export function fileError(range: RetrievalRange, what: string, cause?: unknown): CicadaError {
  return new CicadaError(
    "E_BUNDLE_FILE",
    `${range.path} (weights of stage ${range.stage}, bytes ${range.offset}..${range.offset + range.length}) ${what}`,
    cause === undefined ? undefined : { cause },
  );
}
