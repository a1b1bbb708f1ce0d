// The server-wide budget of request bodies being received (--max-receiving-bytes), on a real `cicada
// serve` process over sockets on 127.0.0.1: a body still arriving holds no queue place, so this budget is
// what bounds the memory that many fast concurrent uploads can hold. Three 1 MiB bodies are held
// mid-upload (the test sends their headers and a first piece, and finishes them when it wants: nothing is
// timed); a fourth large one is refused with 503 E_SERVER_BUSY and Retry-After, from its Content-Length or,
// chunked, from the bytes it streamed; a small valid request that fits is served meanwhile; once the held
// bodies complete (each answered right), the budget is free again.
import { after, test } from "node:test";
import assert from "node:assert/strict";
import { rm } from "node:fs/promises";
import { openBundle } from "../../../src/format/bundle.js";
import { randomInputs } from "../../../src/runtime/model-inputs.js";
import { runEager } from "../../../src/runtime/reference-runner.js";
import { cicada } from "../../support/cli.js";
import { openRequest, rawExchange, startServer, stopAll, until } from "./server-process.js";
import {
  assertBusyRefusals,
  assertMatchesEager,
  jsonRequest,
  tinyBundles,
  type InferJson,
} from "./serve-fixtures.js";

const MiB = 1 << 20;
const fx = await tinyBundles("budget", { "tiny-resnet": 2 });
const bundle = fx.bundles["tiny-resnet"]!;
const { manifest } = await openBundle(bundle);
after(async () => {
  await stopAll();
  await rm(fx.root, { recursive: true, force: true });
});

interface InstanceInfo {
  receiving: number;
  receivingBytes: number;
  maxReceivingBytes: number;
  models: { name: string; queued: number }[];
}

test(
  "bodies being received are bounded server-wide: 503 E_SERVER_BUSY past --max-receiving-bytes, free again once they complete",
  { timeout: 120_000 },
  async () => {
    // Room for three 1 MiB bodies and half a MiB more: a small JSON request fits beside them, a fourth large
    // one does not.
    const budget = 3 * MiB + MiB / 2;
    const server = await startServer([
      bundle,
      "--max-body-bytes",
      String(2 * MiB),
      "--max-receiving-bytes",
      String(budget),
      "--body-timeout-ms",
      "60000",
      "--cache-root",
      fx.cache,
    ]);
    const instance = async () =>
      (await (await fetch(`${server.base}/v2/cicada/instance`)).json()) as InstanceInfo;
    assert.equal((await instance()).maxReceivingBytes, budget);

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

    const held = [0, 1, 2].map(() => {
      const r = openRequest(server.base, path, {
        "content-type": "application/json",
        "content-length": large.length,
      });
      r.req.write(large.subarray(0, 1000));
      return r;
    });
    await until("three bodies being received", async () => (await instance()).receiving === 3);
    let info = await instance();
    assert.equal(info.receivingBytes, 3 * MiB, "each holds its declared length");
    assert.equal(info.models[0]!.queued, 0, "a body still arriving holds no queue place");

    // A fourth large body (declared, then chunked): refused 503 E_SERVER_BUSY, its room never taken.
    await assertBusyRefusals(server.port, head, 3 * MiB, MiB, budget);
    await until("the refused bodies to give their room back", async () => {
      const i = await instance();
      return i.receiving === 3 && i.receivingBytes === 3 * MiB;
    });

    // A small valid request fits beside the held ones and is served (cold start) meanwhile.
    const small = await fetch(`${server.base}${path}`, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: json,
    });
    const out = (await small.json()) as InferJson;
    assert.equal(small.status, 200, JSON.stringify(out).slice(0, 300));
    assertMatchesEager(out.outputs[0]!.data!, eager[out.outputs[0]!.name]!, "the small request");

    // The held bodies complete and are answered right; their room is given back.
    for (const h of held) h.req.end(large.subarray(1000));
    for (const reply of await Promise.all(held.map((h) => h.response))) {
      assert.equal(reply.status, 200, reply.body.toString().slice(0, 300));
      const o = (JSON.parse(reply.body.toString()) as InferJson).outputs[0]!;
      assertMatchesEager(o.data!, eager[o.name]!, "a held request");
    }
    info = await instance();
    assert.deepEqual([info.receiving, info.receivingBytes], [0, 0]);

    // Free again: three large bodies at once, then a fourth.
    const again = await Promise.all(
      [0, 1, 2].map(() =>
        fetch(`${server.base}${path}`, {
          method: "POST",
          headers: { "content-type": "application/json" },
          body: large,
        }),
      ),
    );
    for (const r of again) assert.equal(r.status, 200, await r.clone().text());
    await Promise.all(again.map((r) => r.arrayBuffer()));
    const last = await rawExchange(server.port, [head(`Content-Length: ${MiB}\r\nConnection: close`), large]);
    assert.equal(last.status, 200, last.body.toString().slice(0, 300));
    info = await instance();
    assert.deepEqual([info.receiving, info.receivingBytes], [0, 0]);
    assert.equal(await server.stop(), 0);
  },
);

test("--max-receiving-bytes below --max-body-bytes, or not a positive integer, is refused at start", async () => {
  let r = await cicada(["serve", bundle, "--max-body-bytes", "2000", "--max-receiving-bytes", "1000"]);
  assert.equal(r.code, 2, r.stderr);
  assert.match(
    r.stderr,
    /E_USAGE: --max-receiving-bytes \(1000\) is smaller than --max-body-bytes \(2000\): a body of the largest size accepted could never be received/,
  );
  r = await cicada(["serve", bundle, "--max-receiving-bytes", "0"]);
  assert.equal(r.code, 2, r.stderr);
  assert.match(r.stderr, /--max-receiving-bytes must be an integer >= 1, found '0'/);
  assert.equal(r.stdout, "", "nothing listened");
});
