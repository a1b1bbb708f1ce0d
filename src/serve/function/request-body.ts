// Reading a request body under bounds: its size (refused from its Content-Length when it declares one,
// and counted while it streams otherwise, so that no more than the limit plus one chunk is ever read or
// held), the server-wide budget of bytes held in bodies still being received (ReceivingBudget: a body
// takes room from its declared length, or as it streams, and gives it back once decoded or ended), its
// pace (a body that arrives slower than a minimum rate is cut off: see BodyPace), and, for JSON bodies, its
// nesting depth (checked by a linear scan before JSON.parse, so that no later step ever walks an unbounded
// nesting).
import { CicadaError } from "../../errors.js";
import { abortError } from "./request-queue.js";

/** Deepest JSON nesting a request body may have (an infer request with rank-r data nests 3 + r deep). */
export const MAX_JSON_DEPTH = 64;

/**
 * How fast a body must arrive, as Apache's mod_reqtimeout counts it: within `bodyTimeoutMs` of the request's
 * headers, extended by one second for every `minBytesPerSecond` bytes received. A sender slower than that
 * (after the grace period) is cut off with E_BODY_TOO_SLOW (408).
 */
export interface BodyPace {
  bodyTimeoutMs: number;
  minBytesPerSecond: number;
}

/** The documented defaults of the HTTP adapter's timing bounds (`cicada serve` flags of the same names). */
export const PACE_DEFAULTS = {
  /** --header-timeout-ms: the request line and headers must arrive within it (408). */
  headerTimeoutMs: 10_000,
  /** --body-timeout-ms: the grace period of a body, before the minimum rate applies. */
  bodyTimeoutMs: 10_000,
  /** --min-body-rate: bytes per second a body must keep up after the grace period. */
  minBytesPerSecond: 16_384,
} as const;

/** Milliseconds left before a body that started at `startedAt` with `received` bytes falls behind `pace`. */
export function paceLeftMs(pace: BodyPace, startedAt: number, received: number, at: number): number {
  return startedAt + pace.bodyTimeoutMs + (received / pace.minBytesPerSecond) * 1000 - at;
}

/** E_BODY_TOO_SLOW for a body cut off after `elapsedMs` with `received` of `declared` bytes. */
export function bodyTooSlow(
  pace: BodyPace,
  received: number,
  elapsedMs: number,
  declared?: number,
): CicadaError {
  const of = declared !== undefined && Number.isFinite(declared) ? ` of ${declared}` : "";
  return new CicadaError(
    "E_BODY_TOO_SLOW",
    `the request body arrived too slowly: ${received}${of} bytes in ${Math.round(elapsedMs)} ms; the server allows ${pace.bodyTimeoutMs} ms plus 1 s per ${pace.minBytesPerSecond} bytes received (--body-timeout-ms, --min-body-rate)`,
  );
}

/** The default --max-receiving-bytes is room for this many bodies of --max-body-bytes at once. */
export const RECEIVING_BODIES = 4;

/**
 * A server's budget of bytes in bodies being received: `maxReceivingBytes`, else 4 × `maxBodyBytes`;
 * E_USAGE when it is smaller than `maxBodyBytes` (a body of the largest size accepted could never be
 * received).
 */
export function receivingBudgetBytes(maxBodyBytes: number, maxReceivingBytes?: number): number {
  const bytes = maxReceivingBytes ?? RECEIVING_BODIES * maxBodyBytes;
  if (!(bytes >= maxBodyBytes)) {
    throw new CicadaError(
      "E_USAGE",
      `--max-receiving-bytes (${bytes}) is smaller than --max-body-bytes (${maxBodyBytes}): a body of the largest size accepted could never be received`,
    );
  }
  return bytes;
}

/**
 * The bytes held in request bodies being received, server-wide, bounded by `limitBytes`
 * (--max-receiving-bytes). Each body holds a {@link BodyLease}; a body that would take the total past the
 * limit is refused with E_SERVER_BUSY (503, retry later) instead of being read.
 */
export class ReceivingBudget {
  private heldBytes = 0;

  constructor(readonly limitBytes: number) {}

  /** Bytes held now by every lease. */
  get held(): number {
    return this.heldBytes;
  }

  /** A lease for one body, holding nothing yet. */
  lease(): BodyLease {
    let bytes = 0;
    return {
      get bytes() {
        return bytes;
      },
      take: (more: number, what: string) => {
        if (more <= 0) return;
        if (this.heldBytes + more > this.limitBytes) {
          throw new CicadaError(
            "E_SERVER_BUSY",
            `the server is receiving ${this.heldBytes} bytes of request bodies; ${what} would take ${more} more, past its budget of ${this.limitBytes} bytes (--max-receiving-bytes); retry later`,
          );
        }
        this.heldBytes += more;
        bytes += more;
      },
      release: () => {
        this.heldBytes -= bytes;
        bytes = 0;
      },
    };
  }
}

/** The room one body holds in a {@link ReceivingBudget}. */
export interface BodyLease {
  /** Bytes held. */
  readonly bytes: number;
  /** Holds `more` bytes more (`what` names them in the error), or throws E_SERVER_BUSY and holds nothing more. */
  take(more: number, what: string): void;
  /** Gives back every byte held; the lease may be released again (nothing happens) or taken anew. */
  release(): void;
}

function tooLarge(found: string, maxBytes: number): CicadaError {
  return new CicadaError(
    "E_BODY_TOO_LARGE",
    `the request body is ${found}, larger than the server's limit of ${maxBytes} bytes (--max-body-bytes)`,
  );
}

/**
 * The body of `request` as bytes, or E_BODY_TOO_LARGE past `maxBytes`; `signal` stops the read (its
 * reason is thrown). A stream failure that is not a CicadaError (the client went away mid-body) becomes
 * E_REQUEST. With a `lease`, the body holds its declared length in the lease's budget before any byte is
 * read (or, without one, the bytes read so far), E_SERVER_BUSY when that does not fit; the caller
 * releases the lease once the body is decoded, and a failed read releases it here.
 */
export async function readBody(
  request: Request,
  maxBytes: number,
  signal?: AbortSignal,
  lease?: BodyLease,
): Promise<Uint8Array> {
  try {
    return await readBounded(request, maxBytes, signal, lease);
  } catch (e) {
    lease?.release();
    throw e;
  }
}

async function readBounded(
  request: Request,
  maxBytes: number,
  signal: AbortSignal | undefined,
  lease: BodyLease | undefined,
): Promise<Uint8Array> {
  const declared = request.headers.get("content-length");
  if (declared !== null && Number(declared) > maxBytes) throw tooLarge(`${declared} bytes`, maxBytes);
  const length = declared !== null && /^\s*\d+\s*$/.test(declared) ? Number(declared) : undefined;
  if (length !== undefined) lease?.take(length, `this body's declared ${length} bytes`);
  if (!request.body) return new Uint8Array(0);
  const reader = (request.body as ReadableStream<Uint8Array>).getReader();
  const stop = () => void reader.cancel().catch(() => {});
  signal?.addEventListener("abort", stop, { once: true });
  const chunks: Uint8Array[] = [];
  let total = 0;
  try {
    for (;;) {
      if (signal?.aborted) throw abortError(signal);
      let next: Awaited<ReturnType<typeof reader.read>>;
      try {
        next = await reader.read();
      } catch (e) {
        if (signal?.aborted) throw abortError(signal);
        if (e instanceof CicadaError) throw e;
        throw new CicadaError(
          "E_REQUEST",
          `the request body could not be read after ${total} bytes: ${(e as Error).message ?? String(e)}`,
        );
      }
      if (signal?.aborted) throw abortError(signal);
      if (next.done) break;
      total += next.value.byteLength;
      if (total > maxBytes) {
        stop();
        throw tooLarge(`more than ${maxBytes} bytes (${total} read so far)`, maxBytes);
      }
      if (lease && total > lease.bytes) {
        try {
          lease.take(total - lease.bytes, `this body, ${total} bytes so far,`);
        } catch (e) {
          stop();
          throw e;
        }
      }
      chunks.push(next.value);
    }
  } finally {
    signal?.removeEventListener("abort", stop);
  }
  return chunks.length === 1 ? chunks[0]! : Buffer.concat(chunks, total);
}

/**
 * Where `text` first nests deeper than `maxDepth` (objects and arrays), or undefined: the field is the path
 * to the innermost object member around that place (`inputs.0.data`), "(root)" outside any. One linear
 * pass without recursion, over valid or invalid JSON alike (JSON.parse judges the syntax afterwards).
 */
export function tooDeep(text: string, maxDepth: number): { field: string; offset: number } | undefined {
  const inObject: boolean[] = [];
  const keys: (string | number)[] = [];
  let expectKey = false;
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    if (c === 0x22 /* " */) {
      const start = ++i;
      while (i < text.length && text.charCodeAt(i) !== 0x22) i += text.charCodeAt(i) === 0x5c ? 2 : 1;
      if (expectKey && inObject.length > 0)
        keys[keys.length - 1] = text.slice(start, Math.min(i, start + 64));
      expectKey = false;
    } else if (c === 0x7b /* { */ || c === 0x5b /* [ */) {
      if (inObject.length >= maxDepth) {
        const last = inObject.lastIndexOf(true);
        const field = last < 0 ? "(root)" : keys.slice(0, last + 1).join(".");
        return { field, offset: i };
      }
      inObject.push(c === 0x7b);
      keys.push(c === 0x7b ? "" : 0);
      expectKey = c === 0x7b;
    } else if (c === 0x7d /* } */ || c === 0x5d /* ] */) {
      inObject.pop();
      keys.pop();
      expectKey = false;
    } else if (c === 0x2c /* , */ && keys.length > 0) {
      const top = keys.length - 1;
      if (inObject[top]) expectKey = true;
      else keys[top] = (keys[top] as number) + 1;
    }
  }
  return undefined;
}

/**
 * `text` parsed as JSON, refused with E_REQUEST (naming `what` and the field) when it nests deeper than
 * {@link MAX_JSON_DEPTH} or is not JSON.
 */
export function parseJson(text: string, what: string): unknown {
  const deep = tooDeep(text, MAX_JSON_DEPTH);
  if (deep) {
    throw new CicadaError(
      "E_REQUEST",
      `${what}: field '${deep.field}' nests deeper than ${MAX_JSON_DEPTH} levels (at character ${deep.offset})`,
    );
  }
  try {
    return JSON.parse(text);
  } catch (e) {
    throw new CicadaError("E_REQUEST", `${what}: the body is not valid JSON: ${(e as Error).message}`);
  }
}

/** A JSON body that may be empty (repository requests): undefined when empty, E_REQUEST when not JSON. */
export function optionalJson(body: Uint8Array, what: string): unknown {
  const text = Buffer.from(body.buffer, body.byteOffset, body.byteLength).toString("utf8").trim();
  if (text === "") return undefined;
  return parseJson(text, what);
}
