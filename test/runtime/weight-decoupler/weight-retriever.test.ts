// The WeightDecoupler's retrieval engine on real files in a temp dir: exact bytes, checksums verified as
// they pass (also when a stage's chunks complete out of order), failures confined to their stage, the
// memory budget, stage order, maxInFlight, lanes and abort.
import { test } from "node:test";
import assert from "node:assert/strict";
import { randomBytes } from "node:crypto";
import { mkdtemp, readlink, readdir, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { setFlagsFromString } from "node:v8";
import { runInNewContext } from "node:vm";
import { isCicadaError } from "../../../src/errors.js";
import { crc32Of as checksumOf } from "../../../src/format/checksum.js";
import type { TraceEvent } from "../../../src/metrics/trace.js";
import { FifoScheduler } from "../../../src/runtime/weight-decoupler/retrieval-scheduler.js";
import {
  WeightRetriever,
  type RetrievalRange,
} from "../../../src/runtime/weight-decoupler/weight-retriever.js";

/** Stage lengths: partial last chunks, a stage smaller than a chunk, an empty stage. */
const LENGTHS = [10_000, 4_096, 0, 20_000, 1_234];

interface Fixture {
  dir: string;
  path: string;
  data: Buffer;
  ranges: RetrievalRange[];
}

/** A file holding the stages' ranges back to back after a 100-byte prefix, with checksums. */
async function fixture(lengths = LENGTHS): Promise<Fixture> {
  const dir = await mkdtemp(join(tmpdir(), "cicada-retriever-"));
  const path = join(dir, "weights.bin");
  const data = randomBytes(100 + lengths.reduce((a, b) => a + b, 0));
  await writeFile(path, data);
  let offset = 100;
  const ranges = lengths.map((length, stage) => {
    const r = { stage, path, offset, length, checksum: checksumOf(data.subarray(offset, offset + length)) };
    offset += length;
    return r;
  });
  return { dir, path, data, ranges };
}

const tick = () => new Promise<void>((resolve) => setImmediate(resolve));

/** Ticks the event loop until `cond` holds (fails after many ticks rather than hanging). */
async function until(cond: () => boolean): Promise<void> {
  for (let i = 0; i < 10_000 && !cond(); i++) await tick();
  assert.ok(cond(), "condition not reached");
}

/** Open file descriptors of this process on `path` (Linux). */
async function openFds(path: string): Promise<number> {
  const fds = await readdir("/proc/self/fd");
  const links = await Promise.all(fds.map((fd) => readlink(`/proc/self/fd/${fd}`).catch(() => "")));
  return links.filter((l) => l === path).length;
}

test("buffer mode returns the exact bytes of every range and one R event per stage", async () => {
  const f = await fixture();
  try {
    const events: TraceEvent[] = [];
    const r = new WeightRetriever(f.ranges, {
      mode: "buffer",
      chunkBytes: 4096,
      onEvent: (e) => events.push(e),
    });
    r.start();
    for (const range of f.ranges) {
      const bytes = await r.whenRetrieved(range.stage);
      assert.ok(bytes);
      assert.deepEqual(Buffer.from(bytes), f.data.subarray(range.offset, range.offset + range.length));
      assert.equal(r.status(range.stage), "retrieved");
    }
    assert.deepEqual(
      events.map((e) => [e.unit, e.stage, e.bytes, e.worker]).sort((a, b) => Number(a[1]) - Number(b[1])),
      f.ranges.map((x) => ["R", x.stage, x.length, "main"]),
    );
    for (const e of events) assert.ok(e.end >= e.start);
    const total = LENGTHS.reduce((a, b) => a + b, 0);
    assert.equal(r.stats.bytesRead, total);
    assert.equal(
      r.stats.chunks,
      LENGTHS.reduce((a, b) => a + Math.ceil(b / 4096), 0),
    );
  } finally {
    await rm(f.dir, { recursive: true, force: true });
  }
});

test("prefetch verifies checksums and a corrupted range fails only its stage", async () => {
  const f = await fixture();
  try {
    const corrupt = Buffer.from(f.data);
    corrupt[f.ranges[3]!.offset + 12_345]! ^= 0xff;
    await writeFile(f.path, corrupt);
    const r = new WeightRetriever(f.ranges, { mode: "prefetch", chunkBytes: 4096 });
    r.start();
    const results = await Promise.allSettled(f.ranges.map((x) => r.whenRetrieved(x.stage)));
    results.forEach((res, stage) => {
      if (stage !== 3) assert.deepEqual(res, { status: "fulfilled", value: undefined });
    });
    const failed = results[3]!;
    assert.equal(failed.status, "rejected");
    const e: unknown = failed.reason;
    assert.ok(isCicadaError(e, "E_BUNDLE_CHECKSUM"));
    const found = checksumOf(corrupt.subarray(f.ranges[3]!.offset, f.ranges[3]!.offset + LENGTHS[3]!));
    assert.match(e.message, /weights\.bin/);
    assert.match(e.message, /stage 3/);
    assert.ok(e.message.includes(`expected ${f.ranges[3]!.checksum}, found ${found}`));
    assert.equal(r.status(3), "failed");
    assert.equal(
      r.stats.bytesRead,
      LENGTHS.reduce((a, b) => a + b, 0),
    );
  } finally {
    await rm(f.dir, { recursive: true, force: true });
  }
});

test("a short file, a missing file and a failing read fail their own stage with E_BUNDLE_FILE", async () => {
  const f = await fixture([8192, 8192, 8192, 8192]);
  try {
    const ranges = [
      f.ranges[0]!,
      { ...f.ranges[1]!, offset: f.data.length - 100 },
      { ...f.ranges[2]!, path: join(f.dir, "missing.bin") },
      f.ranges[3]!,
    ];
    const r = new WeightRetriever(ranges, {
      mode: "buffer",
      chunkBytes: 4096,
      readChunk: (chunk, read) =>
        chunk.stage === 3 && chunk.index === 1
          ? Promise.reject(Object.assign(new Error("EIO: i/o error"), { code: "EIO" }))
          : read(),
    });
    r.start();
    const results = await Promise.allSettled(ranges.map((x) => r.whenRetrieved(x.stage)));
    assert.equal(results[0]!.status, "fulfilled");
    const reason = (i: number) => (results[i] as PromiseRejectedResult).reason as Error;
    assert.ok(isCicadaError(reason(1), "E_BUNDLE_FILE"));
    assert.match(reason(1).message, new RegExp(`stage 1.*too short: it ends at byte ${f.data.length}`));
    assert.ok(isCicadaError(reason(2), "E_BUNDLE_FILE"));
    assert.match(reason(2).message, /missing\.bin \(weights of stage 2.*cannot be opened/);
    assert.ok(isCicadaError(reason(3), "E_BUNDLE_FILE"));
    assert.match(reason(3).message, /stage 3.*read of bytes \d+\.\.\d+ failed \(EIO: i\/o error\)/);
    assert.equal(r.stats.aliveBytes, 8192, "failed stages give their budget back");
  } finally {
    await rm(f.dir, { recursive: true, force: true });
  }
});

test("the memory budget bounds the stage buffers alive at once; a stage over budget runs alone", async () => {
  const f = await fixture([8192, 8192, 8192, 8192, 30_000, 8192]);
  try {
    const budget = 20_000;
    const alive = new Map<number, number>();
    let peak = 0;
    const r = new WeightRetriever(f.ranges, {
      mode: "buffer",
      chunkBytes: 4096,
      maxInFlight: 4,
      memoryBudgetBytes: budget,
      readChunk: async (chunk, read) => {
        if (chunk.index === 0) alive.set(chunk.stage, f.ranges[chunk.stage]!.length);
        const sum = [...alive.values()].reduce((a, b) => a + b, 0);
        peak = Math.max(peak, sum);
        if (chunk.stage === 4) assert.deepEqual([...alive.keys()], [4], "the big stage runs alone");
        await tick();
        return read();
      },
    });
    r.start();
    await r.whenRetrieved(1);
    for (let i = 0; i < 20; i++) await tick();
    assert.equal(r.status(2), "queued", "stage 2 waits for a release");
    for (const range of f.ranges) {
      const bytes = await r.whenRetrieved(range.stage);
      assert.deepEqual(Buffer.from(bytes!), f.data.subarray(range.offset, range.offset + range.length));
      await tick();
      alive.delete(range.stage);
      r.release(range.stage);
    }
    assert.ok(peak <= 30_000 && peak > 8192, `peak ${peak}`);
    assert.equal(r.stats.peakAliveBytes, 30_000);
    assert.equal(r.stats.aliveBytes, 0);
  } finally {
    await rm(f.dir, { recursive: true, force: true });
  }
});

test("release drops the buffer: its bytes can be collected and are no longer handed out", async () => {
  setFlagsFromString("--expose-gc");
  const gc = runInNewContext("gc") as () => void;
  const f = await fixture([1 << 20]);
  try {
    const r = new WeightRetriever(f.ranges, { mode: "buffer" });
    assert.throws(
      () => r.release(0),
      (e) => isCicadaError(e, "E_USAGE"),
    );
    r.start();
    assert.throws(() => r.release(0), /its retrieval is reading/);
    let bytes = await r.whenRetrieved(0);
    const ref = new WeakRef(bytes!.buffer);
    assert.equal(r.stats.aliveBytes, 1 << 20);
    r.release(0);
    r.release(0);
    bytes = undefined;
    assert.equal(r.status(0), "released");
    assert.equal(r.stats.aliveBytes, 0);
    await assert.rejects(r.whenRetrieved(0), /released already/);
    // The retrieval's own frame lets go of the buffer once it has closed its file handle.
    for (let i = 0; i < 100 && ref.deref() !== undefined; i++) {
      await tick();
      gc();
    }
    assert.equal(ref.deref(), undefined, "the stage buffer is unreachable after release");
  } finally {
    await rm(f.dir, { recursive: true, force: true });
  }
});

/** FIFO policy that records the order of issue and the most retrievals active at once. */
class RecordingScheduler extends FifoScheduler {
  readonly issued: number[] = [];
  active = 0;
  maxActive = 0;
  override started(stage: number, bytes: number): void {
    super.started(stage, bytes);
    this.issued.push(stage);
    this.maxActive = Math.max(this.maxActive, ++this.active);
  }
  override finished(stage: number): void {
    super.finished(stage);
    this.active--;
  }
}

for (const maxInFlight of [1, 2, 3]) {
  test(`retrievals are issued in stage order with at most ${maxInFlight} in flight`, async () => {
    const f = await fixture([12_000, 3_000, 9_000, 5_000, 7_000, 1_000]);
    try {
      const scheduler = new RecordingScheduler();
      const reading = new Set<number>();
      let maxReading = 0;
      const r = new WeightRetriever([...f.ranges].reverse(), {
        mode: "prefetch",
        chunkBytes: 2048,
        maxInFlight,
        scheduler,
        readChunk: async (chunk, read) => {
          reading.add(chunk.stage);
          maxReading = Math.max(maxReading, reading.size);
          await tick();
          const n = await read();
          if (chunk.position + n === f.ranges[chunk.stage]!.offset + f.ranges[chunk.stage]!.length)
            reading.delete(chunk.stage);
          return n;
        },
      });
      r.start();
      await Promise.all(f.ranges.map((x) => r.whenRetrieved(x.stage)));
      assert.deepEqual(scheduler.issued, [0, 1, 2, 3, 4, 5]);
      assert.equal(scheduler.maxActive, maxInFlight);
      assert.equal(maxReading, maxInFlight);
    } finally {
      await rm(f.dir, { recursive: true, force: true });
    }
  });
}

test("abort rejects pending waits, drops buffers and closes the file handles", async () => {
  const f = await fixture([8192, 8192, 8192]);
  try {
    let release!: () => void;
    const gate = new Promise<void>((resolve) => (release = resolve));
    // FIFO: the default priority scheduler would (rightly) suspend stage 2 behind the overdue stage 1.
    const r = new WeightRetriever(f.ranges, {
      mode: "buffer",
      chunkBytes: 4096,
      scheduler: new FifoScheduler(),
      readChunk: async (chunk, read) => {
        if (chunk.stage === 1 || (chunk.stage === 2 && chunk.index === 1)) await gate;
        return read();
      },
    });
    r.start();
    await r.whenRetrieved(0);
    const pending = r.whenRetrieved(1);
    await until(() => r.stats.chunks === 3);
    assert.equal(r.status(2), "reading");
    assert.equal(await openFds(f.path), 2);
    const reason = new Error("request cancelled");
    const pendingRejects = assert.rejects(pending, reason);
    await r.abort(reason);
    await pendingRejects;
    await assert.rejects(r.whenRetrieved(0), reason);
    await assert.rejects(r.whenRetrieved(2), reason);
    assert.equal(r.status(1), "aborted");
    assert.equal(r.stats.aliveBytes, 0);
    assert.equal(await openFds(f.path), 0);
    release();
    await tick();
    assert.equal(r.status(1), "aborted", "a read finishing after abort changes nothing");
  } finally {
    await rm(f.dir, { recursive: true, force: true });
  }
});

test("invalid ranges and options are refused with E_USAGE", () => {
  const base = { stage: 0, path: "/nonexistent", offset: 0, length: 1 };
  const bad: [RetrievalRange[], object][] = [
    [[base, base], {}],
    [[{ ...base, stage: -1 }], {}],
    [[{ ...base, length: 1.5 }], {}],
    [[{ ...base, checksum: "md5:00" }], {}],
    [[base], { chunkBytes: 0 }],
    [[base], { maxInFlight: 0 }],
    [[base], { memoryBudgetBytes: 0 }],
  ];
  for (const [ranges, options] of bad) {
    assert.throws(
      () => new WeightRetriever(ranges, { mode: "buffer", ...options }),
      (e) => isCicadaError(e, "E_USAGE"),
    );
  }
  const r = new WeightRetriever([base], { mode: "buffer" });
  assert.throws(() => r.waiting(7), /no retrieval of stage 7/);
  r.start();
  assert.throws(() => r.start(), /twice/);
  return r.abort("test over").then(() => assert.rejects(r.whenRetrieved(0), /retrieval aborted: test over/));
});

for (const mode of ["buffer", "prefetch"] as const) {
  test(`${mode}: a stage reads up to 'lanes' chunks at once and verifies chunks that complete out of order`, async () => {
    const f = await fixture([9 * 4096 + 100]);
    try {
      let reading = 0;
      let most = 0;
      const r = new WeightRetriever(f.ranges, {
        mode,
        chunkBytes: 4096,
        lanes: 3,
        readChunk: async (chunk, read) => {
          reading++;
          most = Math.max(most, reading);
          // The first chunk of every group of three completes last.
          for (let i = 0; i < (chunk.index % 3 === 0 ? 20 : 1); i++) await tick();
          reading--;
          return read();
        },
      });
      r.start();
      const bytes = await r.whenRetrieved(0);
      assert.equal(most, 3);
      if (mode === "buffer") {
        const range = f.ranges[0]!;
        assert.deepEqual(Buffer.from(bytes!), f.data.subarray(range.offset, range.offset + range.length));
      }
      // A wrong checksum is still caught when the chunks arrive out of order.
      const wrong = new WeightRetriever([{ ...f.ranges[0]!, checksum: "crc32:00000000" }], {
        mode,
        chunkBytes: 4096,
        lanes: 3,
        readChunk: async (chunk, read) => {
          for (let i = 0; i < (chunk.index % 3 === 0 ? 20 : 1); i++) await tick();
          return read();
        },
      });
      wrong.start();
      await assert.rejects(wrong.whenRetrieved(0), (e) => isCicadaError(e, "E_BUNDLE_CHECKSUM"));
    } finally {
      await rm(f.dir, { recursive: true, force: true });
    }
  });
}
