// Every failure a user can cause or meet has a code from this one table, and a message that names the
// file, tensor or field with the expected and found values. The CLI prints code and message; the HTTP
// layer maps codes to statuses.

/** The table of error codes: what each one means. */
export const ERROR_CODES = {
  E_USAGE: "a command-line flag or API option is missing or out of range",
  E_ONNX_PARSE: "a file is not a valid ONNX model",
  E_ONNX_EXTERNAL_DATA: "an external-data file of an ONNX model is missing or too short",
  E_ONNX_UNSUPPORTED: "the model uses a feature the importer cannot split (it says which)",
  E_ZOO_UNKNOWN: "no zoo model has that name",
  E_OUTPUT_EXISTS: "the output path exists already",
  E_BUNDLE_MANIFEST: "a bundle's manifest.json is missing or malformed",
  E_BUNDLE_CHECKSUM: "a stage's weight bytes do not match the checksum in the manifest",
  E_BUNDLE_FILE: "a file of a bundle is missing or has the wrong size",
  E_BUNDLE_PATH:
    "a path a bundle or cache entry names (stage file, weights file, external-data location) escapes it or is not a regular file",
  E_BUNDLE_LIMIT: "a bundle exceeds a bound: stage count, tensor count, string length, nesting depth",
  E_BUNDLE_VERSION: "a bundle was written by an incompatible version of the format (re-import it)",
  E_CACHE: "a cache entry cannot be written or read (read-only or full disk); it names the entry",
  E_NO_SPACE: "the disk is full: it names the file and the space needed",
  E_MEMORY_BUDGET:
    "a model cannot be loaded within the memory budget by that strategy, even stage by stage: it names the model, the bytes needed and the budget",
  E_OUTPUT_MISSING: "a graph output the manifest names was not produced by the model",
  E_SAFETENSORS: "a safetensors file is malformed",
  E_INPUT_NAME: "an input tensor is missing or unknown",
  E_INPUT_SHAPE: "an input tensor has the wrong shape",
  E_INPUT_DTYPE: "an input tensor has the wrong element type",
  E_INPUT_LIMIT: "an input tensor or example shape has more elements than the runtime accepts",
  E_RUNTIME: "onnxruntime failed to build or run a session",
  E_REQUEST:
    "an HTTP request is malformed: not JSON, a field missing or of the wrong type, binary data of the wrong size (it names the field)",
  E_MODEL_UNKNOWN: "no served model has that name",
  E_ROUTE_UNKNOWN: "no endpoint has that path",
  E_METHOD_NOT_ALLOWED: "the endpoint exists but not for that HTTP method",
  E_BODY_TOO_LARGE: "a request body is larger than the server's --max-body-bytes",
  E_BODY_TOO_SLOW: "a request body arrived slower than the server's minimum rate and was cut off",
  E_QUEUE_FULL: "a model's request queue is full (--max-queue)",
  E_SERVER_BUSY:
    "the server holds as many request bodies being received as its --max-receiving-bytes allows; retry later",
  E_UNAVAILABLE: "the server is shutting down, or the model is not loaded (model ready)",
  E_TIMEOUT: "a request took longer than the server's --timeout-ms",
  E_TRACE_FORMAT:
    "a trace file is not in a supported format or has a malformed line (it names the line and field)",
  E_INSTANCE_START: "an instance process of the platform failed to start or to announce its port",
  E_INSTANCE_DIED: "an instance process of the platform died or stopped answering while serving a request",
  E_HOST_MEMORY:
    "a load would exceed the platform's --host-memory-mb or --instance-memory-mb and nothing idle can be evicted",
} as const;

export type ErrorCode = keyof typeof ERROR_CODES;

/** An error with a stable code from {@link ERROR_CODES}. */
export class CicadaError extends Error {
  readonly code: ErrorCode;

  constructor(code: ErrorCode, message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.code = code;
    this.name = "CicadaError";
  }
}

/** True if `e` is a {@link CicadaError}, optionally with the given code. */
export function isCicadaError(e: unknown, code?: ErrorCode): e is CicadaError {
  return e instanceof CicadaError && (code === undefined || e.code === code);
}
