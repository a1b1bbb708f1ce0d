// The node:http adapter on loopback with plain handlers (the adapter takes any Request → Response
// function): bodies reach the handler as streams, an unread small body keeps the connection alive,
// close() lets in-flight requests finish within its grace period, then cuts the rest; what never reaches
// a handler (unknown methods, malformed HTTP, slow headers and bodies) is answered with coded JSON.
import { test } from "node:test";
import assert from "node:assert/strict";
import { Agent, request } from "node:http";
import { CicadaError, isCicadaError } from "../../../src/errors.js";
import { errorResponse } from "../../../src/serve/function/protocol-errors.js";
import { listen } from "../../../src/serve/function/node-adapter.js";
import { readBody } from "../../../src/serve/function/request-body.js";
import { rawExchange, type RawReply } from "./server-process.js";

function post(
  port: number,
  body: string,
  agent: Agent,
): Promise<{ status: number; text: string; reused: boolean }> {
  return new Promise((resolve, reject) => {
    const req = request({ port, host: "127.0.0.1", path: "/x?q=1", method: "POST", agent }, (res) => {
      let text = "";
      res.on("data", (d: Buffer) => (text += d.toString()));
      res.on("end", () => resolve({ status: res.statusCode ?? 0, text, reused: req.reusedSocket }));
    });
    req.on("error", reject);
    req.end(body);
  });
}

test("requests arrive as WHATWG Requests; an unread small body keeps the connection alive", async () => {
  const seen: string[] = [];
  const server = await listen(
    async (r) => {
      seen.push(`${r.method} ${new URL(r.url).pathname}${new URL(r.url).search}`);
      if (r.headers.get("x-read") === null && seen.length === 1)
        return new Response("refused", { status: 404 });
      return new Response(`echo ${await r.text()}`);
    },
    { host: "127.0.0.1", port: 0 },
  );
  const agent = new Agent({ keepAlive: true, maxSockets: 1 });
  try {
    const first = await post(server.port, "a small body the handler never reads", agent);
    assert.deepEqual([first.status, first.text], [404, "refused"]);
    const second = await post(server.port, "hello", agent);
    assert.deepEqual([second.status, second.text, second.reused], [200, "echo hello", true]);
    assert.deepEqual(seen, ["POST /x?q=1", "POST /x?q=1"]);
  } finally {
    agent.destroy();
    await server.close(1000);
  }
});

test("close() waits for the request in flight, then stops; a request past the grace period is cut", async () => {
  let release = () => {};
  const held = new Promise<void>((r) => (release = r));
  const server = await listen(
    async (r) => {
      if ((await r.text()) === "slow") await held;
      return new Response("done");
    },
    { host: "127.0.0.1", port: 0 },
  );
  const agent = new Agent();
  const inFlight = post(server.port, "slow", agent);
  while (server.inFlight === 0) await new Promise((r) => setTimeout(r, 5));
  const closing = server.close(10_000);
  release();
  assert.deepEqual((await inFlight).text, "done");
  assert.equal(await closing, true);

  const stuck = await listen(() => new Promise<Response>(() => {}), { host: "127.0.0.1", port: 0 });
  const never = post(stuck.port, "x", agent);
  while (stuck.inFlight === 0) await new Promise((r) => setTimeout(r, 5));
  assert.equal(await stuck.close(50), false);
  await assert.rejects(never, /socket hang up|ECONNRESET/);
  agent.destroy();
});

test("a port in use is refused with E_USAGE", async () => {
  const first = await listen(() => Promise.resolve(new Response("")), { host: "127.0.0.1", port: 0 });
  try {
    await assert.rejects(
      listen(() => Promise.resolve(new Response("")), { host: "127.0.0.1", port: first.port }),
      (e) => isCicadaError(e, "E_USAGE") && /address is in use/.test(e.message),
    );
  } finally {
    await first.close(100);
  }
});

/** A server whose handler reads the body (echoing its length) under the given bounds. */
async function bodyServer(extra: Partial<Parameters<typeof listen>[1]> = {}) {
  const log: string[] = [];
  const server = await listen(
    async (r) => {
      try {
        const body = await readBody(r, 1 << 20);
        return new Response(`read ${body.byteLength}`);
      } catch (e) {
        return errorResponse(e);
      }
    },
    { host: "127.0.0.1", port: 0, log: (l) => log.push(l), ...extra },
  );
  return { server, log };
}

const codeOf = (r: RawReply) => (JSON.parse(r.body.toString()) as { code: string }).code;

test("what Node's parser or a Request cannot take is answered here: 405 with Allow, 400, all coded JSON", async () => {
  const { server, log } = await bodyServer({
    allow: (path) => (path === "/x" ? ["POST"] : []),
  });
  try {
    const ask = (raw: string) => rawExchange(server.port, [raw], { timeoutMs: 5000 });
    for (const method of ["TRACE", "TRACK", "FOO", "get"]) {
      const r = await ask(`${method} /x HTTP/1.1\r\nHost: h\r\n\r\n`);
      assert.equal(r.status, 405, `${method}: ${r.body.toString()}`);
      assert.equal(r.headers.allow, "POST", method);
      assert.equal(codeOf(r), "E_METHOD_NOT_ALLOWED");
      assert.match(r.body.toString(), new RegExp(`method \\\\"${method}\\\\" is not one this server takes`));
    }
    const connectReply = await ask("CONNECT example.com:443 HTTP/1.1\r\nHost: example.com\r\n\r\n");
    assert.deepEqual([connectReply.status, codeOf(connectReply)], [405, "E_METHOD_NOT_ALLOWED"]);
    const noAllow = await ask("TRACE /elsewhere HTTP/1.1\r\n\r\n");
    assert.deepEqual([noAllow.status, noAllow.headers.allow], [405, undefined]);
    for (const raw of [
      "POST /x HTTP/1.1\r\nContent-Length: abc\r\n\r\n",
      "POST /x HTTP/1.1\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n",
      "\u0000\u0001garbage\r\n\r\n",
      "GET /x HTTP/1.1\r\nBad Header\r\n\r\n",
    ]) {
      const r = await ask(raw);
      assert.ok(r.status === 400 || r.status === 405, `${JSON.stringify(raw)}: ${r.status}`);
      assert.ok(codeOf(r).startsWith("E_"));
      assert.equal(r.headers.connection, "close");
    }
    const target = await ask("GET http://[::1 HTTP/1.1\r\nHost: h\r\n\r\n");
    assert.deepEqual([target.status, codeOf(target)], [400, "E_REQUEST"]);
    const expectation = await ask("POST /x HTTP/1.1\r\nExpect: teapot\r\nContent-Length: 0\r\n\r\n");
    assert.deepEqual([expectation.status, codeOf(expectation)], [400, "E_REQUEST"]);
    const fine = await ask("POST /x HTTP/1.1\r\nContent-Length: 2\r\n\r\nhi");
    assert.equal(fine.body.toString(), "read 2");
    assert.deepEqual(log, [], "nothing reached the log as an internal error");
  } finally {
    await server.close(100);
  }
});

test("a slow sender is cut off with 408: headers past their deadline, a body below its pace", async () => {
  const { server } = await bodyServer({
    headerTimeoutMs: 400,
    pace: { bodyTimeoutMs: 400, minBytesPerSecond: 1000 },
  });
  try {
    const headers = [
      "POST /x HTTP/1.1\r\n",
      "Host: h\r\n",
      "X-A: 1\r\n",
      "X-B: 2\r\n",
      "X-C: 3\r\n",
      "X-D: 4\r\n",
    ];
    const slowHeaders = await rawExchange(server.port, [...headers, ...headers.slice(1)], {
      gapMs: 150,
      timeoutMs: 5000,
    });
    assert.equal(slowHeaders.status, 408, slowHeaders.body.toString());
    assert.equal(codeOf(slowHeaders), "E_BODY_TOO_SLOW");
    assert.match(slowHeaders.body.toString(), /within 400 ms \(--header-timeout-ms\)/);
    assert.ok(slowHeaders.ms < 3000, `cut after ${slowHeaders.ms} ms`);

    const head = "POST /x HTTP/1.1\r\nHost: h\r\nContent-Length: 100\r\n\r\n";
    const dribble = Array.from({ length: 40 }, () => "x");
    const slowBody = await rawExchange(server.port, [head, ...dribble], { gapMs: 100, timeoutMs: 5000 });
    assert.equal(slowBody.status, 408, slowBody.body.toString());
    assert.equal(codeOf(slowBody), "E_BODY_TOO_SLOW");
    assert.match(slowBody.body.toString(), /arrived too slowly: \d+ of 100 bytes in \d+ ms/);
    assert.equal(slowBody.headers.connection, "close");
    assert.ok(slowBody.ms >= 400 && slowBody.ms < 2500, `cut after ${slowBody.ms} ms`);

    // At the pace (1000 B/s after 400 ms): 100 bytes every 50 ms keep well ahead.
    const steady = Array.from({ length: 10 }, () => "y".repeat(100));
    const ok = await rawExchange(
      server.port,
      ["POST /x HTTP/1.1\r\nHost: h\r\nContent-Length: 1000\r\n\r\n", ...steady],
      { gapMs: 50, timeoutMs: 5000 },
    );
    assert.equal(ok.body.toString(), "read 1000");
  } finally {
    await server.close(100);
  }
});

test("a client gone mid-body is a coded error; a cancelled read never crashes the server", async () => {
  const { server, log } = await bodyServer({ pace: { bodyTimeoutMs: 200, minBytesPerSecond: 10 } });
  const gone = await rawExchange(
    server.port,
    ["POST /x HTTP/1.1\r\nHost: h\r\nContent-Length: 50\r\n\r\n", "abc"],
    { end: true, timeoutMs: 3000 },
  );
  assert.ok(gone.closed || gone.status === 400, `${gone.status}`);
  // A handler that stops reading (a deadline) while a read waits; the rest of the body arrives later.
  const stuck = await listen(
    async (r) => {
      const controller = new AbortController();
      setTimeout(() => controller.abort(new CicadaError("E_TIMEOUT", "late")), 50);
      return readBody(r, 1000, controller.signal).then(
        () => new Response("read"),
        (e: unknown) => errorResponse(e),
      );
    },
    { host: "127.0.0.1", port: 0 },
  );
  try {
    const late = await rawExchange(
      stuck.port,
      ["POST /x HTTP/1.1\r\nHost: h\r\nContent-Length: 6\r\n\r\nabc", "def"],
      { gapMs: 200, timeoutMs: 3000 },
    );
    assert.equal(late.status, 504);
    await new Promise((r) => setTimeout(r, 300));
    const after = await rawExchange(stuck.port, ["GET / HTTP/1.1\r\nHost: h\r\n\r\n"], { timeoutMs: 3000 });
    assert.equal(after.status, 200, "still serving");
    assert.deepEqual(log, []);
  } finally {
    await stuck.close(100);
    await server.close(100);
  }
});
