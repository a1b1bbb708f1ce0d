// The priority-aware scheduler (Algorithm 1 and the stall rule) on a fake clock: alone, and driving a
// WeightRetriever over real files whose reads a test hook holds back by hand.
import { test } from "node:test";
import assert from "node:assert/strict";
import { randomBytes } from "node:crypto";
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { isCicadaError } from "../../../src/errors.js";
import { BandwidthEstimator } from "../../../src/runtime/weight-decoupler/bandwidth-estimator.js";
import {
  FifoScheduler,
  PriorityScheduler,
  createScheduler,
  type SchedulerDecision,
} from "../../../src/runtime/weight-decoupler/retrieval-scheduler.js";
import {
  WeightRetriever,
  type RetrievalRange,
} from "../../../src/runtime/weight-decoupler/weight-retriever.js";

const tick = () => new Promise<void>((resolve) => setImmediate(resolve));

async function until(cond: () => boolean): Promise<void> {
  for (let i = 0; i < 10_000 && !cond(); i++) await tick();
  assert.ok(cond(), "condition not reached");
}

/** A promise's state after the event loop has had a chance to settle it. */
async function settled(p: Promise<unknown>): Promise<boolean> {
  let done = false;
  p.then(
    () => (done = true),
    () => (done = true),
  );
  for (let i = 0; i < 5; i++) await tick();
  return done;
}

const brief = (log: readonly SchedulerDecision[]) => log.map((d) => `${d.kind} ${d.stage} ${d.reason}`);

test("the bandwidth estimate is a moving average of chunk throughput", () => {
  const e = new BandwidthEstimator(1e6, 0.5);
  assert.equal(e.expectedMs(1000), 1);
  e.observe(2000, 1);
  assert.equal(e.bytesPerSecond, 1.5e6);
  e.observe(1000, 0);
  assert.equal(e.bytesPerSecond, 1.5e6, "a chunk timed at 0 ms is ignored");
  assert.throws(
    () => new BandwidthEstimator(0),
    (err) => isCicadaError(err, "E_USAGE"),
  );
  assert.throws(
    () => new BandwidthEstimator(1e9, 1.5),
    (err) => isCicadaError(err, "E_USAGE"),
  );
});

test("an overdue retrieval is raised (lowest stage first) and the others wait until it finishes", async () => {
  let t = 0;
  const s = new PriorityScheduler({ initialBandwidth: 1e6, now: () => t });
  for (const stage of [1, 2, 3]) s.started(stage, 1000);
  assert.equal(s.deadline(2), 1);
  await s.beforeChunk(3);
  assert.deepEqual(s.log, [], "nothing is overdue before its expected duration");
  t = 5;
  const third = s.beforeChunk(3);
  assert.equal(s.raisedStage, 1);
  assert.equal(await settled(third), false, "stage 3 is suspended");
  t = 6;
  assert.equal(s.deadline(3), 2, "time held back by the scheduler extends the deadline");
  await s.beforeChunk(1);
  s.finished(1);
  assert.equal(await settled(third), false, "stage 2, overdue too, is raised in its turn");
  assert.equal(s.raisedStage, 2);
  s.finished(2);
  assert.equal(await settled(third), true);
  assert.deepEqual(brief(s.log), [
    "raise 1 overdue",
    "suspend 3 overdue",
    "raise 2 overdue",
    "raise 3 overdue",
    "resume 3 overdue",
  ]);
  const relaxed = new PriorityScheduler({ initialBandwidth: 1e6, now: () => t, slack: 2 });
  relaxed.started(0, 1000);
  assert.equal(relaxed.deadline(0), t + 2, "slack stretches the expected duration");
  assert.throws(
    () => new PriorityScheduler({ slack: 0 }),
    (err) => isCicadaError(err, "E_USAGE"),
  );
  assert.deepEqual(s.counters, {
    raises: 3,
    overdueRaises: 3,
    stalledRaises: 0,
    suspensions: 1,
    resumes: 1,
    stalls: 0,
  });
});

test("a stall raises its stage and preempts a raise made for a later overdue stage", async () => {
  let t = 0;
  const s = new PriorityScheduler({ initialBandwidth: 1e6, now: () => t });
  s.stalled(0);
  assert.equal(s.raisedStage, undefined, "a stage not yet started is not raised");
  s.started(1, 1000);
  s.started(2, 10);
  t = 0.5;
  const first = s.beforeChunk(1);
  assert.equal(s.raisedStage, 2, "stage 2 is overdue, stage 1 not yet");
  assert.equal(await settled(first), false);
  s.stalled(1);
  assert.equal(s.raisedStage, 1);
  assert.equal(await settled(first), true);
  const second = s.beforeChunk(2);
  assert.equal(await settled(second), false, "the overdue stage now waits for the stalled one");
  s.finished(1);
  assert.equal(await settled(second), true);
  assert.deepEqual(brief(s.log), [
    "raise 2 overdue",
    "suspend 1 overdue",
    "raise 1 stalled",
    "resume 1 overdue",
    "suspend 2 stalled",
    "raise 2 overdue",
    "resume 2 stalled",
  ]);
  assert.equal(s.counters.stalls, 2);
  assert.equal(s.counters.stalledRaises, 1);
});

test("abort rejects suspended chunks and every later one", async () => {
  const s = new PriorityScheduler({ initialBandwidth: 1e6, now: () => 0 });
  s.started(0, 1000);
  s.started(1, 1000);
  s.stalled(0);
  const waiting = s.beforeChunk(1);
  s.abort("cancelled");
  await assert.rejects(waiting, /retrieval aborted: cancelled/);
  await assert.rejects(s.beforeChunk(0), /retrieval aborted: cancelled/);
});

test("the FIFO scheduler never suspends", async () => {
  const s = createScheduler("fifo", { initialBandwidth: 1e6, now: () => 1e9 });
  assert.ok(s instanceof FifoScheduler);
  s.started(0, 1e9);
  s.started(1, 1e9);
  s.stalled(1);
  await s.beforeChunk(0);
  s.progressed(0, 2e6, 1);
  assert.ok(s.bandwidth > 1e6);
  assert.deepEqual(s.log, []);
  assert.equal(s.counters.stalls, 1);
  assert.equal(s.counters.suspensions, 0);
  s.abort(new Error("stop"));
  await assert.rejects(s.beforeChunk(0), /stop/);
});

/** Stages back to back in one file; each chunk of 4096 bytes. */
async function stagesFile(
  chunksPerStage: number[],
): Promise<{ dir: string; data: Buffer; ranges: RetrievalRange[] }> {
  const dir = await mkdtemp(join(tmpdir(), "cicada-scheduler-"));
  const path = join(dir, "weights.bin");
  const data = randomBytes(chunksPerStage.reduce((a, b) => a + b, 0) * 4096);
  await writeFile(path, data);
  let offset = 0;
  const ranges = chunksPerStage.map((chunks, stage) => {
    const r = { stage, path, offset, length: chunks * 4096 };
    offset += r.length;
    return r;
  });
  return { dir, data, ranges };
}

test("a retrieval held back by its reader turns overdue: it is raised, the others wait, then resume", async () => {
  const f = await stagesFile([8, 4, 4]);
  try {
    // Fake clock: every chunk read takes 1 ms, matching the initial estimate (4096 bytes per ms), so the
    // expected durations are 8, 4 and 4 ms. Stage 1's first chunk is held until the test lets it go.
    let t = 0;
    const clock = () => t;
    let letGo!: () => void;
    const gate = new Promise<void>((resolve) => (letGo = resolve));
    const reads: string[] = [];
    const scheduler = new PriorityScheduler({ initialBandwidth: 4096 * 1000, now: clock });
    const retriever = new WeightRetriever(f.ranges, {
      mode: "buffer",
      chunkBytes: 4096,
      // One chunk of a stage at a time, so that the order of reads is the scheduler's alone.
      lanes: 1,
      maxInFlight: 2,
      scheduler,
      now: clock,
      readChunk: async (chunk, read) => {
        if (chunk.stage === 1 && chunk.index === 0) await gate;
        else t += 1;
        reads.push(`${chunk.stage}.${chunk.index}`);
        return read();
      },
    });
    retriever.start();
    await until(() => scheduler.log.length === 2);
    assert.deepEqual(brief(scheduler.log), ["raise 1 overdue", "suspend 0 overdue"]);
    assert.equal(scheduler.log[0]!.t, 4, "raised when now >= t0 + D (0 + 4 ms)");
    assert.deepEqual(reads, ["0.0", "0.1", "0.2", "0.3"]);
    for (let i = 0; i < 20; i++) await tick();
    assert.equal(reads.length, 4, "stage 0 stays suspended while stage 1 is held");
    assert.equal(retriever.status(2), "queued");
    letGo();
    const bytes = await Promise.all(f.ranges.map((r) => retriever.whenRetrieved(r.stage)));
    assert.deepEqual(reads.slice(4, 8), ["1.0", "1.1", "1.2", "1.3"], "stage 1 runs alone once raised");
    assert.deepEqual(brief(scheduler.log).slice(0, 3), [
      "raise 1 overdue",
      "suspend 0 overdue",
      "resume 0 overdue",
    ]);
    assert.equal(scheduler.log[2]!.t, 7, "stage 0 resumes when stage 1 completes");
    bytes.forEach((b, i) => {
      const r = f.ranges[i]!;
      assert.deepEqual(Buffer.from(b!), f.data.subarray(r.offset, r.offset + r.length));
    });
  } finally {
    await rm(f.dir, { recursive: true, force: true });
  }
});

test("waiting(i) from the pipeline raises i as stalled: the others wait until it is retrieved", async () => {
  const f = await stagesFile([6, 3]);
  try {
    // A still clock: nothing is ever overdue, so only the stall rule can act.
    const scheduler = new PriorityScheduler({ now: () => 0 });
    const reads: number[] = [];
    const retriever = new WeightRetriever(f.ranges, {
      mode: "prefetch",
      chunkBytes: 4096,
      scheduler,
      now: () => 0,
      readChunk: async (chunk, read) => {
        reads.push(chunk.stage);
        await tick();
        return read();
      },
    });
    retriever.start();
    retriever.waiting(1);
    await Promise.all(f.ranges.map((r) => retriever.whenRetrieved(r.stage)));
    assert.deepEqual(brief(scheduler.log), ["raise 1 stalled", "suspend 0 stalled", "resume 0 stalled"]);
    assert.deepEqual(reads, [1, 1, 1, 0, 0, 0, 0, 0, 0]);
    assert.equal(scheduler.counters.stalls, 1);
  } finally {
    await rm(f.dir, { recursive: true, force: true });
  }
});

test("under FIFO a stalled stage held by its reader holds nobody else back", async () => {
  const f = await stagesFile([6, 3]);
  try {
    let letGo!: () => void;
    const gate = new Promise<void>((resolve) => (letGo = resolve));
    const scheduler = new FifoScheduler({ now: () => 0 });
    const retriever = new WeightRetriever(f.ranges, {
      mode: "prefetch",
      chunkBytes: 4096,
      scheduler,
      now: () => 0,
      readChunk: async (chunk, read) => {
        if (chunk.stage === 1) await gate;
        return read();
      },
    });
    retriever.start();
    retriever.waiting(1);
    await retriever.whenRetrieved(0);
    assert.equal(retriever.status(1), "reading");
    retriever.waiting(0);
    letGo();
    await retriever.whenRetrieved(1);
    assert.deepEqual(scheduler.log, []);
    assert.equal(scheduler.counters.stalls, 1, "waiting for a retrieved stage is no stall");
    assert.equal(scheduler.counters.suspensions, 0);
  } finally {
    await rm(f.dir, { recursive: true, force: true });
  }
});
