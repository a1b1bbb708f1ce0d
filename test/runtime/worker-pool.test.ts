// Stage workers with real threads and real onnxruntime on a tiny two-layer model: creation by path and
// from transferred bytes, results equal to a session on the main thread, execution before construction,
// the faults (onnxruntime errors, dead workers, close) settling every promise, and the start: worker 0 at
// once, the others on first use, requests taken while a worker is still starting.
import { after, before, test } from "node:test";
import assert from "node:assert/strict";
import { mkdtemp, readFile, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { isCicadaError } from "../../src/errors.js";
import { DataType } from "../../src/format/onnx-types.js";
import { now } from "../../src/metrics/trace.js";
import type { HostTensor } from "../../src/runtime/host-tensor.js";
import { createSession, releaseSession, runSession } from "../../src/runtime/ort-adapter.js";
import { decodeModel, encodeModel } from "../../src/format/onnx-io.js";
import { createRuntime } from "../../src/runtime/runtime.js";
import { WorkerPool, type WorkerDeath } from "../../src/runtime/worker-pool.js";
import {
  nextTaskIndex,
  TaskGate,
  WARM_UP_MODEL,
  type WorkerRequest,
} from "../../src/runtime/worker-protocol.js";
import { GraphBuilder, uniformStd } from "../../src/zoo/graph-builder.js";
import { writeZooModel } from "../../src/zoo/model-writer.js";

const WIDTH = 16;
let dir = "";
let modelPath = "";
let pool: WorkerPool;

/** y = Relu(x · w1) · w2 with x float32 [1, 16]. */
async function writeTinyModel(outDir: string): Promise<string> {
  const g = new GraphBuilder("tiny-mlp");
  const x = g.input("x", DataType.FLOAT, [1, WIDTH]);
  const h = g.node("Relu", [g.node("MatMul", [x, g.weight("w1", [WIDTH, WIDTH], uniformStd(0.5))])]);
  g.node("MatMul", [h, g.weight("w2", [WIDTH, WIDTH], uniformStd(0.5))]);
  g.renameLastOutput("y");
  g.output("y", DataType.FLOAT, [1, WIDTH]);
  const written = await writeZooModel(g, outDir, { seed: 5 });
  return written.modelPath;
}

function input(seed: number): HostTensor {
  const data = new Float32Array(WIDTH).map((_, i) => Math.sin(seed + i));
  return { dtype: "float32", dims: [1, WIDTH], data };
}

/** The model's output for input(seed), from a session on the main thread. */
async function reference(seed: number): Promise<HostTensor> {
  const session = await createSession(modelPath);
  try {
    return (await runSession(session, { x: input(seed) })).y!;
  } finally {
    await releaseSession(session);
  }
}

function rejectsWith(code: string, pattern: RegExp): (e: unknown) => boolean {
  return (e) => {
    assert.ok(isCicadaError(e), `expected a CicadaError, got ${String(e)}`);
    assert.equal(e.code, code, e.message);
    assert.match(e.message, pattern);
    return true;
  };
}

before(async () => {
  dir = await mkdtemp(join(tmpdir(), "cicada-worker-pool-"));
  modelPath = await writeTinyModel(join(dir, "tiny"));
  pool = new WorkerPool({ workers: 2, intraOpNumThreads: 1 });
  await pool.ready();
});

after(async () => {
  await pool.close();
  await rm(dir, { recursive: true, force: true });
});

test("a session created by path in a worker gives the main thread's output, with worker-side timing", async () => {
  const t0 = now();
  const created = await pool.create(0, "by-path", { path: modelPath });
  assert.deepEqual(created.inputNames, ["x"]);
  assert.deepEqual(created.outputNames, ["y"]);
  const ran = await pool.run(0, "by-path", { x: input(1) });
  const t1 = now();
  // Worker times are on the main thread's clock. NOTE: each thread anchors that clock to the wall clock
  // when it starts, so allow the two anchors to differ by a millisecond.
  for (const t of [created, ran]) assert.ok(t0 - 1 <= t.start && t.start <= t.end && t.end <= t1 + 1);
  assert.ok(created.end <= ran.start);
  const y = ran.outputs.y!;
  assert.ok(y.data instanceof Float32Array);
  assert.deepEqual(y, await reference(1));
  assert.deepEqual(pool.sessionsOf(0), ["by-path"]);
  const released = await pool.release(0, "by-path");
  assert.deepEqual(released.released, ["by-path"]);
  assert.deepEqual(pool.sessionsOf(0), []);
});

test("model bytes, in-memory external data and feeds are transferred, not copied", async () => {
  const bytes = new Uint8Array(await readFile(modelPath));
  const data = new Uint8Array(await readFile(`${modelPath}.data`));
  const pending = pool.create(1, "from-bytes", { bytes, externalData: [{ path: "model.onnx.data", data }] });
  assert.equal(bytes.byteLength, 0, "the model bytes are detached in the caller");
  assert.equal(data.byteLength, 0, "the external data is detached in the caller");
  await pending;
  const x = input(2);
  const running = pool.run(1, "from-bytes", { x });
  assert.equal(x.data.byteLength, 0, "the feed's buffer is detached in the caller");
  assert.deepEqual((await running).outputs.y, await reference(2));
  await pool.release(1, "from-bytes");
});

test("a worker picks runs before creates: a run queued behind two creates goes right after the running one", async () => {
  await pool.create(0, "warm", { path: modelPath });
  const gate = new TaskGate();
  const createA = pool.create(0, "A", { path: modelPath }, {}, { gate });
  await gate.started;
  // Create A is now running (held at its start); B and X queue behind it in this order.
  const createB = pool.create(0, "B", { path: modelPath });
  const runX = pool.run(0, "warm", { x: input(3) });
  gate.open();
  const [a, b, x] = await Promise.all([createA, createB, runX]);
  assert.ok(a.end <= x.start, "run X did not interrupt create A");
  assert.ok(x.end <= b.start, "run X went before create B, which was queued first");
  assert.deepEqual(x.outputs.y, await reference(3));
  const [w0, w1] = await pool.releaseAll();
  assert.deepEqual(new Set(w0!.released), new Set(["warm", "A", "B"]));
  assert.deepEqual(w1!.released, []);
});

test("a run never overtakes the create of its own session, nor a releaseAll", async () => {
  const gate = new TaskGate();
  const held = pool.create(1, "held", { path: modelPath }, {}, { gate });
  await gate.started;
  const createK = pool.create(1, "K", { path: modelPath });
  const runK = pool.run(1, "K", { x: input(4) });
  gate.open();
  const [k, r] = await Promise.all([createK, runK, held]);
  assert.ok(k.end <= r.start);
  assert.deepEqual(r.outputs.y, await reference(4));
  await pool.release(1, "K");
  await pool.release(1, "held");

  const run = (key: string): WorkerRequest => ({ id: 0, kind: "run", key, feeds: {} });
  const create = (key: string): WorkerRequest => ({
    id: 0,
    kind: "create",
    key,
    source: { path: "" },
    config: {},
  });
  assert.equal(nextTaskIndex([]), -1);
  assert.equal(nextTaskIndex([create("a"), create("b"), run("c")]), 2);
  assert.equal(nextTaskIndex([create("a"), run("a"), run("c")]), 2);
  assert.equal(nextTaskIndex([create("a"), { id: 0, kind: "releaseAll" }, run("c")]), 0);
  assert.equal(nextTaskIndex([create("a"), run("a")]), 0);
});

test("a model onnxruntime rejects, or a bad run, fails only its own request", async () => {
  await pool.create(0, "good", { path: modelPath });
  await assert.rejects(
    pool.create(0, "bad", { bytes: new Uint8Array([8, 1, 2, 3, 4]) }),
    rejectsWith("E_RUNTIME", /worker-0: create 'bad': onnxruntime could not create a session/),
  );
  await assert.rejects(
    pool.run(0, "good", { x: { dtype: "float32", dims: [1, 3], data: new Float32Array(3) } }),
    rejectsWith("E_RUNTIME", /worker-0: run 'good': onnxruntime failed to run/),
  );
  await assert.rejects(
    pool.run(0, "missing", { x: input(0) }),
    rejectsWith("E_USAGE", /no session 'missing'/),
  );
  await assert.rejects(pool.create(0, "good", { path: modelPath }), rejectsWith("E_USAGE", /already/));
  await assert.rejects(pool.run(2, "good", { x: input(0) }), rejectsWith("E_USAGE", /no worker 2/));
  assert.deepEqual((await pool.run(0, "good", { x: input(5) })).outputs.y, await reference(5));
  await pool.release(0, "good");
});

for (const how of ["exit", "throw", "kill"] as const) {
  test(`a worker that dies mid-request (${how}) fails its pending requests and is replaced`, async () => {
    await pool.create(1, "doomed", { path: modelPath });
    const gate = new TaskGate();
    const died = new Promise<WorkerDeath>((resolve) => pool.once("worker-died", resolve));
    const running = pool.run(1, "doomed", { x: input(6) }, undefined, { gate });
    await gate.started;
    const queued = pool.create(1, "queued", { path: modelPath });
    if (how === "kill") await pool.kill(1);
    else gate.open(how);
    const reason = { exit: /exit code 7/, throw: /uncaught exception/, kill: /terminated by kill/ }[how];
    await assert.rejects(
      running,
      rejectsWith("E_RUNTIME", /worker-1 died \(.*\) before run 'doomed' finished/),
    );
    await assert.rejects(queued, rejectsWith("E_RUNTIME", reason));
    const death = await died;
    assert.equal(death.worker, 1);
    assert.match(death.reason, reason);
    assert.deepEqual(death.lostSessions, ["doomed"]);
    assert.deepEqual(death.failedRequests, ["run 'doomed'", "create 'queued'"]);
    assert.deepEqual(pool.sessionsOf(1), []);
    await pool.ready();
    await pool.create(1, "doomed", { path: modelPath });
    assert.deepEqual((await pool.run(1, "doomed", { x: input(7) })).outputs.y, await reference(7));
    await pool.release(1, "doomed");
  });
}

test("close() settles pending requests and leaves no thread or port behind", async () => {
  const own = new WorkerPool({ workers: 1 });
  await own.ready();
  await own.create(0, "s", { path: modelPath });
  const gate = new TaskGate();
  const running = own.run(0, "s", { x: input(8) }, undefined, { gate });
  await gate.started;
  const before = process.getActiveResourcesInfo().filter((r) => r === "MessagePort").length;
  await own.close();
  await assert.rejects(running, rejectsWith("E_RUNTIME", /pool was closed/));
  await assert.rejects(own.run(0, "s", { x: input(8) }), rejectsWith("E_RUNTIME", /the pool is closed/));
  const left = process.getActiveResourcesInfo().filter((r) => r === "MessagePort").length;
  assert.equal(left, before - 1, "the closed pool's port is gone; the shared pool keeps its own");
});

test("the warm-up model written out in worker-protocol.ts is what onnx-io encodes for y = Identity(x)", () => {
  const info = (name: string) => ({
    name,
    type: { tensorType: { elemType: DataType.FLOAT, shape: { dim: [{ dimValue: 1 }] } } },
  });
  const expected = encodeModel({
    irVersion: 8,
    opsetImport: [{ domain: "", version: 17 }],
    graph: {
      name: "warm-up",
      node: [{ opType: "Identity", input: ["x"], output: ["y"] }],
      input: [info("x")],
      output: [info("y")],
    },
  });
  assert.deepEqual([...expected], [...WARM_UP_MODEL]);
  const graph = decodeModel(Uint8Array.from(WARM_UP_MODEL)).graph!;
  assert.deepEqual(
    graph.node!.map((n) => n.opType),
    ["Identity"],
  );
});

test("a lazy pool starts worker 0 at once and worker 1 on its first request, which waits for its start", async () => {
  const own = new WorkerPool({ workers: 2, intraOpNumThreads: 1 });
  try {
    assert.equal(own.started, 1, "only worker 0 is started by the constructor");
    assert.deepEqual(own.sessionsOf(1), [], "an unstarted worker has no sessions");
    // Sent before worker 0 said it was ready: the request waits in its port.
    await own.create(0, "s0", { path: modelPath });
    assert.equal(own.started, 1, "work on worker 0 alone starts no other worker");
    const ready: number[] = [];
    own.on("worker-ready", ({ worker }) => ready.push(worker));
    await own.create(1, "s1", { path: modelPath });
    assert.equal(own.started, 2);
    assert.deepEqual(ready, [1], "worker 1 started for the request and was ready before serving it");
    assert.deepEqual((await own.run(1, "s1", { x: input(9) })).outputs.y, await reference(9));
    await assert.rejects(own.run(2, "s1", { x: input(9) }), rejectsWith("E_USAGE", /no worker 2/));
  } finally {
    await own.close();
  }
  const eager = new WorkerPool({ workers: 2, intraOpNumThreads: 1, start: "eager" });
  assert.equal(eager.started, 2);
  await eager.ready();
  await eager.close();
  const lazy = new WorkerPool({ workers: 2, intraOpNumThreads: 1 });
  await lazy.ready();
  assert.equal(lazy.started, 2, "ready() starts every worker");
  await lazy.close();
  await assert.rejects(lazy.ready(), rejectsWith("E_RUNTIME", /closed/));
});

test("createRuntime returns before its workers are up; a request sent at once is served", async () => {
  // The default runtime starts no worker until a load needs one (its first load may run inline).
  const auto = await createRuntime({ workers: 2, intraOpNumThreads: 1 });
  assert.equal(auto.pool.started, 0);
  await auto.close();
  const runtime = await createRuntime({ workers: 2, intraOpNumThreads: 1, executor: "workers" });
  try {
    assert.equal(runtime.pool.started, 1);
    // Attached after createRuntime resolved: it hears worker 0 become ready, so nothing waited for it.
    const up: number[] = [];
    runtime.pool.on("worker-ready", ({ worker }) => up.push(worker));
    await runtime.pool.create(0, "k", { path: modelPath });
    assert.deepEqual(up, [0], "worker 0 became ready after createRuntime resolved, before serving");
    assert.deepEqual((await runtime.pool.run(0, "k", { x: input(10) })).outputs.y, await reference(10));
    await runtime.ready();
    assert.equal(runtime.pool.started, 2);
  } finally {
    await runtime.close();
  }
});
