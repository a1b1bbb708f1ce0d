// One HTTP exchange over a keep-alive agent, the response read whole: how the gateway talks to its
// instances and the replayer to the gateway. NOTE: node:http rather than fetch: on these paths undici's
// fetch cost ~3 ms more per request, and in a burst of 100 concurrent requests on 2 cores it added 0.5-1 s
// per request before the server saw it (node:http: 0.2-0.4 s).
import { request as httpRequest, type Agent, type IncomingHttpHeaders } from "node:http";

/** A response, read whole. */
export interface HttpReply {
  status: number;
  headers: IncomingHttpHeaders;
  /** Header names and values as received, alternating. */
  rawHeaders: string[];
  body: Buffer;
}

/** Options of {@link exchange}. */
export interface ExchangeOptions {
  method: string;
  headers?: Record<string, string>;
  body?: Uint8Array;
  agent: Agent;
  signal?: AbortSignal;
}

function once(url: string, o: ExchangeOptions): Promise<HttpReply> {
  return new Promise((resolve, reject) => {
    const headers = { ...o.headers, "content-length": String(o.body?.byteLength ?? 0) };
    const req = httpRequest(
      url,
      { method: o.method, headers, agent: o.agent, ...(o.signal ? { signal: o.signal } : {}) },
      (res) => {
        const chunks: Buffer[] = [];
        res.on("data", (c: Buffer) => chunks.push(c));
        res.on("error", reject);
        res.on("end", () => {
          if (!res.complete) return reject(new Error("the response ended before it was complete"));
          resolve({
            status: res.statusCode ?? 0,
            headers: res.headers,
            rawHeaders: res.rawHeaders,
            body: Buffer.concat(chunks),
          });
        });
      },
    );
    req.on("error", (e: NodeJS.ErrnoException) =>
      reject(Object.assign(e, { reusedSocket: req.reusedSocket })),
    );
    req.end(o.body);
  });
}

/**
 * Sends a request and reads the response. NOTE: a request that fails with ECONNRESET or EPIPE on a reused
 * keep-alive connection met the server closing it as idle (its keep-alive timeout) just as the request went
 * out, so the server never read it: it is sent once more, on a new connection, as Node's documentation
 * advises (`request.reusedSocket`). Any other failure is the caller's.
 */
export async function exchange(url: string, o: ExchangeOptions): Promise<HttpReply> {
  try {
    return await once(url, o);
  } catch (e) {
    const err = e as NodeJS.ErrnoException & { reusedSocket?: boolean };
    if (!err.reusedSocket || (err.code !== "ECONNRESET" && err.code !== "EPIPE") || o.signal?.aborted)
      throw e;
    return once(url, o);
  }
}
