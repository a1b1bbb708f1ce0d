// The memory sampler: the sampler thread (its own field scan agrees with the /proc status parser of
// src/metrics/proc-memory.ts), peaks of a window, and downsampling that keeps the peak. No onnxruntime,
// nothing timed.
import { test } from "node:test";
import assert from "node:assert/strict";
import { downsample, MemorySampler, type MemorySample } from "../../src/bench/memory-sampler.js";

test("a window sees memory touched inside it, and the thread's samples agree with the parser", async () => {
  const sampler = await MemorySampler.start(1);
  try {
    sampler.begin();
    const block = Buffer.alloc(64 << 20, 1);
    // Let the thread sample while the block is alive (it runs on its own; only wait for it).
    const before = sampler.threadSamples;
    while (sampler.threadSamples < before + 2) await new Promise((r) => setTimeout(r, 1));
    const w = sampler.end();
    assert.equal(block[block.length - 1], 1);
    assert.ok(w.samples.length >= 2, "baseline and closing samples at least");
    assert.ok(w.peak.rssAnonBytes - w.baseline.rssAnonBytes >= 48 << 20, "the 64 MiB block shows in RssAnon");
    assert.ok(w.peakArrayBuffersBytes >= 64 << 20, "and in arrayBuffers");
    for (let i = 1; i < w.samples.length; i++)
      assert.ok(w.samples[i]!.t >= w.samples[i - 1]!.t, "time order");
    for (const s of w.samples) {
      assert.ok(s.rssBytes <= w.peak.rssBytes && s.rssAnonBytes <= w.peak.rssAnonBytes);
      // Every sample (the thread's own scan included) is a consistent status reading.
      assert.ok(s.rssAnonBytes > 0 && s.rssFileBytes > 0);
      assert.ok(Math.abs(s.rssBytes - s.rssAnonBytes - s.rssFileBytes) < 4 << 20);
    }
    const thread = w.samples.slice(1, -1);
    assert.ok(thread.length >= 2);
    // The thread's last sample and the closing parser sample both see the live block.
    assert.ok(Math.abs(thread.at(-1)!.rssAnonBytes - w.samples.at(-1)!.rssAnonBytes) < 16 << 20);
    // A second window starts afresh.
    sampler.begin();
    const again = sampler.end();
    assert.ok(again.samples[0]!.t >= w.samples.at(-1)!.t);
    assert.throws(() => sampler.end(), /no memory window/);
  } finally {
    await sampler.close();
  }
  await assert.rejects(MemorySampler.start(0.5), RangeError);
});

test("a full buffer halves its samples and keeps the peak", async () => {
  const sampler = await MemorySampler.start(1, 8);
  try {
    sampler.begin();
    const block = Buffer.alloc(32 << 20, 1);
    // Wait (without asserting any duration) until the thread has filled and halved its buffer twice.
    while (sampler.threadIntervalMs < 4) await new Promise((r) => setTimeout(r, 1));
    const w = sampler.end();
    assert.equal(block[0], 1);
    assert.ok(w.intervalMs >= 4);
    assert.ok(w.samples.length <= 8 + 2, `${w.samples.length} samples`);
    assert.ok(w.peak.rssAnonBytes - w.baseline.rssAnonBytes >= 24 << 20);
    for (let i = 1; i < w.samples.length; i++)
      assert.ok(w.samples[i]!.t >= w.samples[i - 1]!.t, "time order");
  } finally {
    await sampler.close();
  }
  await assert.rejects(MemorySampler.start(1, 7), RangeError);
});

test("downsample keeps the time span and the peak", () => {
  const samples: MemorySample[] = Array.from({ length: 1000 }, (_, i) => ({
    t: i,
    rssBytes: i === 537 ? 9e9 : 1000 + (i % 7),
    rssAnonBytes: 1,
    rssFileBytes: 1,
  }));
  const d = downsample(samples, 100);
  assert.equal(d.length, 100);
  assert.ok(
    d.some((s) => s.rssBytes === 9e9),
    "peak kept",
  );
  assert.equal(d[0]!.t <= 9, true);
  assert.ok(d.at(-1)!.t >= 990);
  assert.deepEqual(downsample(samples.slice(0, 10), 100), samples.slice(0, 10));
});
