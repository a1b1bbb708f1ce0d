// Reading a request body under a size limit: refused from its Content-Length when it declares one, and
// counted while it streams otherwise, so that no more than the limit (plus one chunk) is ever read from the
// connection or held in memory.
import { CicadaError } from "../errors.js";
import { abortError } from "./request-queue.js";

function tooLarge(found: string, maxBytes: number): CicadaError {
  return new CicadaError(
    "E_BODY_TOO_LARGE",
    `the request body is ${found}, larger than the server's limit of ${maxBytes} bytes (--max-body-bytes)`,
  );
}

/**
 * The body of `request` as bytes, or E_BODY_TOO_LARGE past `maxBytes`; `signal` stops the read (its
 * reason is thrown).
 */
export async function readBody(
  request: Request,
  maxBytes: number,
  signal?: AbortSignal,
): Promise<Uint8Array> {
  const declared = request.headers.get("content-length");
  if (declared !== null && Number(declared) > maxBytes) throw tooLarge(`${declared} bytes`, maxBytes);
  if (!request.body) return new Uint8Array(0);
  const reader = (request.body as ReadableStream<Uint8Array>).getReader();
  const stop = () => void reader.cancel().catch(() => {});
  signal?.addEventListener("abort", stop, { once: true });
  const chunks: Uint8Array[] = [];
  let total = 0;
  try {
    for (;;) {
      if (signal?.aborted) throw abortError(signal);
      const { done, value } = await reader.read();
      if (signal?.aborted) throw abortError(signal);
      if (done) break;
      total += value.byteLength;
      if (total > maxBytes) {
        stop();
        throw tooLarge(`more than ${maxBytes} bytes (${total} read so far)`, maxBytes);
      }
      chunks.push(value);
    }
  } finally {
    signal?.removeEventListener("abort", stop);
  }
  return chunks.length === 1 ? chunks[0]! : Buffer.concat(chunks, total);
}

/** A JSON body that may be empty (repository requests): undefined when empty, E_REQUEST when not JSON. */
export function optionalJson(body: Uint8Array, what: string): unknown {
  const text = Buffer.from(body.buffer, body.byteOffset, body.byteLength).toString("utf8").trim();
  if (text === "") return undefined;
  try {
    return JSON.parse(text);
  } catch (e) {
    throw new CicadaError("E_REQUEST", `${what}: the body is not valid JSON: ${(e as Error).message}`);
  }
}
