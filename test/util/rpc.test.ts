// The request-id RPC over a real MessageChannel: replies that come back out of order settle their own
// requests, stray and late replies are ignored, a request that cannot be posted rejects at once, and
// when the other end goes away every waiting request is rejected.
import { test } from "node:test";
import assert from "node:assert/strict";
import { MessageChannel } from "node:worker_threads";
import { RpcCalls } from "../../src/util/rpc.js";

interface Request {
  id: number;
  n: number;
}
interface Reply {
  id: number;
  ok: boolean;
  value: number;
}

/** A caller on port1 and an answering end on port2 that replies `n * 10`, failing for n < 0. */
function channel() {
  const { port1, port2 } = new MessageChannel();
  const calls = new RpcCalls<{ n: number }>();
  port1.on("message", (reply: Reply) => {
    const call = calls.take(reply.id);
    if (!call) return;
    if (reply.ok) call.resolve(reply.value);
    else call.reject(new Error(`request ${call.meta.n} failed`));
  });
  const received: Request[] = [];
  const close = () => {
    port1.close();
    port2.close();
  };
  return { port1, port2, calls, received, close };
}

test("replies sent in reverse order settle the request each one names", async () => {
  const { port1, port2, calls, received, close } = channel();
  port2.on("message", (r: Request) => {
    received.push(r);
    if (received.length < 3) return;
    for (const q of [...received].reverse()) {
      port2.postMessage({ id: q.id, ok: q.n >= 0, value: q.n * 10 } satisfies Reply);
    }
  });
  const send = (n: number) => calls.call<number>({ n }, (id) => port1.postMessage({ id, n }));
  const [a, b, c] = [send(1), send(2), send(-3)];
  const cFails = assert.rejects(c, /request -3 failed/);
  assert.equal(calls.size, 3);
  assert.deepEqual(
    calls.waiting().map((w) => w.meta.n),
    [1, 2, -3],
  );
  assert.equal(await a, 10);
  assert.equal(await b, 20);
  await cFails;
  assert.equal(calls.size, 0);
  assert.equal(new Set(received.map((r) => r.id)).size, 3, "every request got its own id");
  close();
});

test("a reply naming no waiting request is ignored; peek leaves a request waiting", async () => {
  const { port1, port2, calls, close } = channel();
  let id = 0;
  const pending = calls.call<number>({ n: 7 }, (i) => {
    id = i;
    port1.postMessage({ id: i, n: 7 });
  });
  assert.equal(calls.peek(id)?.meta.n, 7);
  assert.equal(calls.size, 1, "peek does not settle");
  port2.postMessage({ id: id + 100, ok: true, value: 1 } satisfies Reply);
  port2.postMessage({ id, ok: true, value: 70 } satisfies Reply);
  port2.postMessage({ id, ok: true, value: 71 } satisfies Reply); // a late duplicate
  assert.equal(await pending, 70);
  assert.equal(calls.take(id), undefined);
  close();
});

test("a request that cannot be posted rejects with the post's error and is not left waiting", async () => {
  const { port1, calls, close } = channel();
  const unclonable = () => undefined;
  const p = calls.call({ n: 1 }, (id) => port1.postMessage({ id, f: unclonable }));
  await assert.rejects(p, (e: Error) => e.name === "DataCloneError");
  assert.equal(calls.size, 0);
  close();
});

test("failAll rejects every waiting request, oldest first, with the error made for it", async () => {
  const { port1, calls, close } = channel();
  const sent = [1, 2, 3].map((n) => calls.call({ n }, (id) => port1.postMessage({ id, n })));
  const failed = calls.failAll(({ meta }) => new Error(`peer gone before request ${meta.n}`));
  assert.deepEqual(
    failed.map((f) => f.meta.n),
    [1, 2, 3],
  );
  await Promise.all(sent.map((p, i) => assert.rejects(p, new RegExp(`before request ${i + 1}$`))));
  assert.equal(calls.size, 0);
  const after = calls.call<number>({ n: 4 }, (id) => port1.postMessage({ id, n: 4 }));
  assert.equal(calls.size, 1, "the channel takes new requests afterwards");
  calls.failAll(() => new Error("closed"));
  await assert.rejects(after, /closed/);
  close();
});
