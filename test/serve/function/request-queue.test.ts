// The bounded queue of one model without a model: admission limit, one job at a time in arrival order, a
// deadline that drops a waiting request or answers for a running one (whose work keeps the turn), and
// the `after` step that runs before the next job. Jobs are held on promises the test resolves.
import { test } from "node:test";
import assert from "node:assert/strict";
import { CicadaError, isCicadaError } from "../../../src/errors.js";
import { RequestQueue } from "../../../src/serve/function/request-queue.js";

function gate(): { promise: Promise<void>; open: () => void } {
  let open = () => {};
  const promise = new Promise<void>((resolve) => (open = resolve));
  return { promise, open };
}

const timeout = () => new CicadaError("E_TIMEOUT", "late");
/** Lets the queue's bookkeeping after a job (its `after`, the ticket's release) run. */
const settle = () => new Promise((r) => setImmediate(r));

test("admission is refused past the limit and given back by release", () => {
  const q = new RequestQueue(2, "m");
  const a = q.admit();
  q.admit();
  assert.throws(
    () => q.admit(),
    (e) => isCicadaError(e, "E_QUEUE_FULL") && /model m: 2 requests/.test(e.message),
  );
  a.release();
  a.release();
  assert.equal(q.admitted, 1);
  q.admit();
  assert.equal(q.admitted, 2);
});

test("jobs run one at a time in arrival order; exclusive jobs take their turn without a ticket", async () => {
  const q = new RequestQueue(3, "m");
  const order: string[] = [];
  const first = gate();
  const runs = [
    q.run(q.admit(), async () => {
      order.push("a start");
      await first.promise;
      order.push("a end");
      return "a";
    }),
    q.exclusive(() => {
      order.push("unload");
      return Promise.resolve("u");
    }),
    q.run(q.admit(), () => {
      order.push("b");
      return Promise.resolve("b");
    }),
  ];
  await settle();
  assert.deepEqual(order, ["a start"]);
  assert.ok(q.busy);
  first.open();
  assert.deepEqual(await Promise.all(runs), ["a", "u", "b"]);
  assert.deepEqual(order, ["a start", "a end", "unload", "b"]);
  await settle();
  assert.equal(q.admitted, 0);
  assert.ok(!q.busy);
});

test("a deadline drops a waiting request at once and gives its place back", async () => {
  const q = new RequestQueue(2, "m");
  const hold = gate();
  const running = q.run(q.admit(), () => hold.promise);
  const controller = new AbortController();
  let ran = false;
  const waiting = q.run(
    q.admit(),
    () => {
      ran = true;
      return Promise.resolve();
    },
    { signal: controller.signal },
  );
  controller.abort(timeout());
  await assert.rejects(waiting, (e) => isCicadaError(e, "E_TIMEOUT"));
  assert.equal(q.admitted, 1);
  hold.open();
  await running;
  assert.ok(!ran, "the dropped job never ran");
});

test("a deadline answers for a running job at once; the job keeps its turn and `after` runs before the next", async () => {
  const q = new RequestQueue(2, "m");
  const hold = gate();
  const order: string[] = [];
  const controller = new AbortController();
  const late = q.run(
    q.admit(),
    async () => {
      await hold.promise;
      order.push("late job ended");
    },
    {
      signal: controller.signal,
      after: () => {
        order.push("after");
        return Promise.resolve();
      },
    },
  );
  await settle();
  controller.abort(timeout());
  await assert.rejects(late, (e) => isCicadaError(e, "E_TIMEOUT"));
  assert.equal(q.admitted, 1, "the late job still holds its place");
  const next = q.run(q.admit(), () => Promise.resolve(void order.push("next")));
  await settle();
  assert.deepEqual(order, []);
  hold.open();
  await next;
  assert.deepEqual(order, ["late job ended", "after", "next"]);
  await settle();
  assert.equal(q.admitted, 0);
});

test("a job's failure reaches its caller only; the queue goes on", async () => {
  const q = new RequestQueue(2, "m");
  const failing = q.run(q.admit(), () => Promise.reject(new Error("boom")));
  const next = q.run(q.admit(), () => Promise.resolve(42));
  await assert.rejects(failing, /boom/);
  assert.equal(await next, 42);
  const aborted = new AbortController();
  aborted.abort("gone");
  await assert.rejects(
    q.run(q.admit(), () => Promise.resolve(1), { signal: aborted.signal }),
    (e) => isCicadaError(e, "E_TIMEOUT") && /abandoned \(gone\)/.test(e.message),
  );
  await settle();
  assert.equal(q.admitted, 0);
});
