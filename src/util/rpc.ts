// The calling side of a request-id RPC over a message channel (a worker's MessagePort, a child process's
// IPC): each request gets an id, the caller's promise waits under it, the reply that names the id settles
// it, and when the other end goes away every request still waiting is rejected. The worker pool (stage
// workers) and the cold-start benchmark (instance processes) both correlate this way; the transport and
// the reply format stay theirs: they post the message and decide how a reply settles its request.

/** A request waiting for its reply: what the caller attached to it, and how to settle its promise. */
export interface PendingCall<Meta> {
  id: number;
  meta: Meta;
  resolve: (result: unknown) => void;
  reject: (error: Error) => void;
}

/** Requests in flight on one channel, by id; `Meta` is what the caller keeps with each (e.g. the request). */
export class RpcCalls<Meta> {
  private nextId = 1;
  private readonly calls = new Map<number, PendingCall<Meta>>();

  /**
   * Sends a request: picks its id, registers it with `meta`, and calls `post(id)` to put it on the
   * channel. The promise settles when a reply is matched to it (see {@link take}) or on {@link failAll};
   * if `post` throws (a message that cannot be sent), the request is dropped and rejects with that error.
   */
  call<Result>(meta: Meta, post: (id: number) => void): Promise<Result> {
    const id = this.nextId++;
    return new Promise<Result>((resolve, reject) => {
      this.calls.set(id, { id, meta, resolve: resolve as (result: unknown) => void, reject });
      try {
        post(id);
      } catch (e) {
        this.calls.delete(id);
        reject(e instanceof Error ? e : new Error(String(e)));
      }
    });
  }

  /** The request `id` if it is still waiting (it stays waiting); undefined for an unknown or settled id. */
  peek(id: number): PendingCall<Meta> | undefined {
    return this.calls.get(id);
  }

  /**
   * Removes the request a reply names and returns it for the caller to settle; undefined when no request
   * waits under `id` (a late reply after {@link failAll}, or a stray message), which the caller ignores.
   */
  take(id: number): PendingCall<Meta> | undefined {
    const call = this.calls.get(id);
    this.calls.delete(id);
    return call;
  }

  /**
   * The other end is gone: rejects every waiting request, oldest first, with the error `errorFor` makes
   * for it, and returns them (so the caller can say which requests failed).
   */
  failAll(errorFor: (call: PendingCall<Meta>) => Error): PendingCall<Meta>[] {
    const failed = [...this.calls.values()];
    this.calls.clear();
    for (const call of failed) call.reject(errorFor(call));
    return failed;
  }

  /** The requests still waiting, oldest first. */
  waiting(): PendingCall<Meta>[] {
    return [...this.calls.values()];
  }

  /** How many requests are waiting. */
  get size(): number {
    return this.calls.size;
  }
}
