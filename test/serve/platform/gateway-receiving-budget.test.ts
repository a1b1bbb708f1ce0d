// The platform gateway's budget of request bodies being received (--max-receiving-bytes), over real
// sockets on 127.0.0.1 in front of a real instance process. The gateway reads a whole body before it queues
// the request, so without this budget many concurrent large uploads hold unbounded memory there. Three
// 1 MiB bodies are held mid-upload (the test sends their headers and most of their bytes, and finishes them
// when it wants: nothing is timed); a fourth large one is refused with 503 E_SERVER_BUSY and Retry-After,
// from its Content-Length or, chunked, from the bytes it streamed; a small valid request that fits is served
// meanwhile; once the held bodies complete (each answered right), the budget is free again.
import { after, test } from "node:test";
import assert from "node:assert/strict";
import { rm } from "node:fs/promises";
import { openBundle } from "../../../src/format/bundle.js";
import { randomInputs } from "../../../src/runtime/model-inputs.js";
import { runEager } from "../../../src/runtime/reference-runner.js";
import type { Platform } from "../../../src/serve/platform/platform.js";
import { cicada } from "../../support/cli.js";
import { testPlatform } from "./platform-fixtures.js";
import { openRequest, rawExchange, until } from "../function/server-process.js";
import {
  assertBusyRefusals,
  assertMatchesEager,
  jsonRequest,
  tinyBundles,
  type InferJson,
} from "../function/serve-fixtures.js";

const MiB = 1 << 20;
const fx = await tinyBundles("gateway-budget", { "tiny-resnet": 2 });
const bundle = fx.bundles["tiny-resnet"]!;
const { manifest } = await openBundle(bundle);
let platform: Platform | undefined;
after(async () => {
  await platform?.close();
  await rm(fx.root, { recursive: true, force: true });
});

interface PlatformState {
  receiving: number;
  receivingBytes: number;
  maxReceivingBytes: number;
  queued: number;
}

test(
  "bodies being received at the gateway are bounded: 503 E_SERVER_BUSY past --max-receiving-bytes, free again once they complete",
  { timeout: 120_000 },
  async () => {
    // Room for three 1 MiB bodies and half a MiB more: a small JSON request fits beside them, a fourth
    // large one does not.
    const budget = 3 * MiB + MiB / 2;
    platform = await testPlatform(fx.root, [bundle], { maxBodyBytes: 2 * MiB, maxReceivingBytes: budget });
    const base = platform.url;
    const state = async () => (await (await fetch(`${base}/v2/cicada/platform`)).json()) as PlatformState;
    assert.equal((await state()).maxReceivingBytes, budget);

    const feeds = randomInputs(manifest.inputs, 3);
    const eager = (await runEager(manifest.model.source, feeds)).outputs;
    const json = jsonRequest(feeds);
    assert.ok(json.length < MiB / 2, `the small request (${json.length} bytes) fits the half MiB left`);
    // A valid request of exactly 1 MiB: the JSON, then whitespace.
    const large = Buffer.alloc(MiB, 0x20);
    large.write(json);
    const path = "/v2/models/tiny-resnet/infer";
    const head = (framing: string) =>
      `POST ${path} HTTP/1.1\r\nHost: h\r\nContent-Type: application/json\r\n${framing}\r\n\r\n`;

    // Most of each body is sent at once: at the default pace (10 s, then 16 KiB/s) the 960 KiB buy a
    // minute before the gateway would cut a held body off as too slow.
    const sent = 960 * 1024;
    const held = [0, 1, 2].map(() => {
      const r = openRequest(base, path, { "content-type": "application/json", "content-length": MiB });
      r.req.write(large.subarray(0, sent));
      return r;
    });
    await until("three bodies being received", async () => (await state()).receiving === 3);
    let s = await state();
    assert.equal(s.receivingBytes, 3 * MiB, "each holds its declared length");
    assert.equal(s.queued, 0, "a body still arriving is not queued");

    // A fourth large body (declared, then chunked): refused 503 E_SERVER_BUSY, its room never taken.
    await assertBusyRefusals(platform.port, head, 3 * MiB, MiB, budget);
    await until("the refused bodies to give their room back", async () => {
      const now = await state();
      return now.receiving === 3 && now.receivingBytes === 3 * MiB;
    });

    // A small valid request fits beside the held ones and is served (cold start) meanwhile.
    const small = await fetch(`${base}${path}`, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: json,
      signal: AbortSignal.timeout(60_000),
    });
    const out = (await small.json()) as InferJson;
    assert.equal(small.status, 200, JSON.stringify(out).slice(0, 300));
    assertMatchesEager(out.outputs[0]!.data!, eager[out.outputs[0]!.name]!, "the small request");
    assert.equal((await state()).receivingBytes, 3 * MiB, "a body read gives its room back");

    // The held bodies complete and are answered right; their room is given back.
    for (const h of held) h.req.end(large.subarray(sent));
    for (const reply of await Promise.all(held.map((h) => h.response))) {
      assert.equal(reply.status, 200, reply.body.toString().slice(0, 300));
      const o = (JSON.parse(reply.body.toString()) as InferJson).outputs[0]!;
      assertMatchesEager(o.data!, eager[o.name]!, "a held request");
    }
    s = await state();
    assert.deepEqual([s.receiving, s.receivingBytes], [0, 0]);

    // Free again: three large bodies at once, then a fourth.
    const again = await Promise.all(
      [0, 1, 2].map(() =>
        fetch(`${base}${path}`, {
          method: "POST",
          headers: { "content-type": "application/json" },
          body: large,
          signal: AbortSignal.timeout(60_000),
        }),
      ),
    );
    for (const r of again) assert.equal(r.status, 200, await r.clone().text());
    await Promise.all(again.map((r) => r.arrayBuffer()));
    const last = await rawExchange(
      platform.port,
      [head(`Content-Length: ${MiB}\r\nConnection: close`), large],
      { timeoutMs: 30_000 },
    );
    assert.equal(last.status, 200, last.body.toString().slice(0, 300));
    s = await state();
    assert.deepEqual([s.receiving, s.receivingBytes], [0, 0]);

    // A body that fails mid-upload (the client goes away) gives its room back too.
    const gone = openRequest(base, path, { "content-type": "application/json", "content-length": MiB });
    gone.response.catch(() => {});
    gone.req.on("error", () => {});
    gone.req.write(large.subarray(0, 1000));
    await until("the abandoned body being received", async () => (await state()).receivingBytes === MiB);
    gone.req.destroy();
    await until("the abandoned body to give its room back", async () => {
      const now = await state();
      return now.receiving === 0 && now.receivingBytes === 0;
    });
  },
);

test("cicada platform --max-receiving-bytes below --max-body-bytes, or not a positive integer, is refused at start", async () => {
  let r = await cicada([
    "platform",
    "--models",
    bundle,
    "--port",
    "0",
    "--max-body-bytes",
    "2000",
    "--max-receiving-bytes",
    "1000",
  ]);
  assert.equal(r.code, 2, r.stderr);
  assert.match(
    r.stderr,
    /E_USAGE: --max-receiving-bytes \(1000\) is smaller than --max-body-bytes \(2000\): a body of the largest size accepted could never be received/,
  );
  r = await cicada(["platform", "--models", bundle, "--port", "0", "--max-receiving-bytes", "0"]);
  assert.equal(r.code, 2, r.stderr);
  assert.match(r.stderr, /--max-receiving-bytes must be an integer >= 1, found '0'/);
  assert.equal(r.stdout, "", "nothing listened");
});
