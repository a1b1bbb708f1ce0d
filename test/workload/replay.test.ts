// The open-loop replayer against a real platform: requests leave at their arrival times even while the
// platform answers none of them, the bounds hold (no send past --max-wall-s, outstanding requests
// abandoned after the drain period), and a run's summary counts what the paper reports.
import { test } from "node:test";
import assert from "node:assert/strict";
import { openBundle } from "../../src/format/bundle.js";
import type { MemoryPoint } from "../../src/serve/platform/instance-pool.js";
import type { Platform } from "../../src/serve/platform/platform.js";
import { binaryInferRequest } from "../../src/serve/platform/replay-inputs.js";
import { replayArrivals, type RequestRecord } from "../../src/workload/replay.js";
import { summarizeReplay } from "../../src/workload/replay-summary.js";
import type { Arrival } from "../../src/workload/trace-invocations.js";
import { testPlatform, tinyBundles } from "../serve/platform/platform-fixtures.js";

const fx = await tinyBundles("cicada-replay-");
const platform: Platform = await testPlatform(fx.root, [fx.resnet, fx.opt], { instances: 1 });
test.after(async () => {
  await platform.close();
  await fx.cleanup();
});
const requests = new Map(
  await Promise.all(
    [fx.resnet, fx.opt].map(async (b) => {
      const { manifest } = await openBundle(b);
      return [manifest.model.name, binaryInferRequest(manifest)] as const;
    }),
  ),
);
const arrivals = (times: number[], model = "tiny-resnet"): Arrival[] =>
  times.map((t, k) => ({ t, func: `f${k % 2}`, model }));

test("open loop: requests leave on time while the platform answers none; all are served afterwards", async () => {
  const instance = platform.pool.instances[0]!;
  process.kill(instance.pid, "SIGSTOP");
  const sent: number[] = [];
  let resumed = false;
  const replay = replayArrivals({
    url: platform.url,
    arrivals: arrivals([0, 150, 300, 450, 600]),
    requests,
    maxWallMs: 10_000,
    onRecord: () => {},
  });
  // Resume the instance well after the last arrival: none can have been answered before.
  const timer = setTimeout(() => {
    resumed = true;
    process.kill(instance.pid, "SIGCONT");
  }, 1200);
  try {
    const { records } = await replay;
    assert.ok(resumed);
    sent.push(...records.map((r) => r.sentMs - r.scheduledMs));
    assert.equal(records.length, 5);
    for (const r of records) {
      assert.equal(r.status, 200, r.error);
      assert.ok(
        r.instanceMs! > 0 && r.instanceMs! <= r.gatewayMs! && r.gatewayMs! <= r.latencyMs,
        JSON.stringify(r),
      );
    }
    assert.ok(Math.max(...sent) < 100, `send lags ${sent.map((s) => s.toFixed(0)).join(", ")} ms`);
    assert.ok(records[0]!.latencyMs > 1000, "the first waited for the stopped instance");
    assert.deepEqual(
      records.map((r) => r.cold),
      [true, false, false, false, false],
    );
  } finally {
    clearTimeout(timer);
    process.kill(instance.pid, "SIGCONT");
  }
});

test("bounds: nothing is sent past maxWallMs; what is outstanding after the drain is abandoned", async () => {
  const instance = platform.pool.instances[0]!;
  process.kill(instance.pid, "SIGSTOP");
  try {
    const { records, wallMs } = await replayArrivals({
      url: platform.url,
      arrivals: arrivals([0, 50, 400, 5000]),
      requests,
      maxWallMs: 300,
      drainMs: 500,
    });
    assert.equal(records.length, 2, "the arrivals at 400 ms and 5 s are past the bound");
    for (const r of records) {
      assert.equal(r.status, 0);
      assert.match(r.error ?? "", /abandoned/);
    }
    assert.ok(wallMs < 3000, `${wallMs} ms`);
  } finally {
    process.kill(instance.pid, "SIGCONT");
  }
});

test("the summary: percentiles over successes, cold share, refusals by kind, memory peak and mean", () => {
  const rec = (latencyMs: number, status: number, cold: boolean | null): RequestRecord => ({
    func: "f",
    model: "m",
    scheduledMs: 0,
    sentMs: 2,
    latencyMs,
    status,
    cold,
    instance: "i1",
    queueMs: 1,
    gatewayMs: latencyMs - 1,
    instanceMs: latencyMs - 3,
    loadMs: cold ? 30 : null,
  });
  const records = [
    ...Array.from({ length: 99 }, (_, k) => rec(10 + k, 200, k < 9)),
    rec(1000, 200, true),
    rec(5, 429, null),
    rec(5, 429, null),
    rec(60_000, 504, null),
    rec(3, 502, null),
  ];
  const point = (hostBytes: number): MemoryPoint => ({
    t: 0,
    hostBytes,
    pssSumBytes: hostBytes,
    rssSumBytes: 2 * hostBytes,
    anonSumBytes: hostBytes / 2,
    instances: 1,
  });
  const s = summarizeReplay(records, [point(100), point(300)]);
  assert.deepEqual([s.sent, s.ok, s.rejected, s.timedOut, s.failed], [104, 100, 2, 1, 1]);
  assert.equal(s.coldStarts, 10);
  assert.equal(s.coldShare, 0.1);
  assert.equal(s.coldLoadMsMedian, 30);
  assert.equal(s.latencyMs.p50, 59.5);
  assert.ok(s.latencyMs.p99 > 100 && s.latencyMs.p99 < 1000);
  assert.equal(s.latencyMs.max, 1000);
  assert.equal(s.maxSendLagMs, 2);
  assert.equal(s.serviceMs.p50, 58.5, "latency less the wait for an instance");
  assert.equal(s.instanceMs.p50, 56.5);
  assert.deepEqual(
    [s.memory.hostPeakBytes, s.memory.hostMeanBytes, s.memory.rssSumPeakBytes],
    [300, 200, 600],
  );
});
