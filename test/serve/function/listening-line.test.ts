// The listening line both `cicada serve` and `cicada platform` print, and its one parser: what is written
// reads back, and a first stdout line that is not one is refused saying why (the platform's pool and
// serve-process.ts report it; the commands themselves are run in server-lifecycle and platform-cli).
import { test } from "node:test";
import assert from "node:assert/strict";
import { isCicadaError } from "../../../src/errors.js";
import { httpOrigin, listeningLine, parseListeningLine } from "../../../src/serve/function/listening-line.js";

test("the line written for host:port is one JSON line that parses back with this pid", () => {
  const line = listeningLine("127.0.0.1", 8080);
  assert.ok(line.endsWith("\n") && !line.slice(0, -1).includes("\n"), "one line, newline-terminated");
  assert.deepEqual(JSON.parse(line), { event: "listening", host: "127.0.0.1", port: 8080, pid: process.pid });
  assert.deepEqual(parseListeningLine(line.trimEnd()), {
    event: "listening",
    host: "127.0.0.1",
    port: 8080,
    pid: process.pid,
  });
});

test("anything else on the first line is E_INSTANCE_START naming the problem", () => {
  const refused = (text: string, why: RegExp) =>
    assert.throws(
      () => parseListeningLine(text),
      (e: unknown) => isCicadaError(e, "E_INSTANCE_START") && why.test(e.message),
      text,
    );
  refused("Debugger listening on ws://127.0.0.1:9229", /not JSON: 'Debugger listening/);
  refused(JSON.stringify({ event: "ready", host: "h", port: 1, pid: 1 }), /malformed/);
  refused(JSON.stringify({ event: "listening", host: "h", port: 0, pid: 1 }), /malformed/);
  refused(JSON.stringify({ event: "listening", host: "h", port: 65536, pid: 1 }), /malformed/);
  refused(JSON.stringify({ event: "listening", host: "", port: 80, pid: 1 }), /malformed/);
  refused(JSON.stringify({ event: "listening", host: "h", port: 80 }), /malformed/);
});

test("the origin of a listening address: IPv6 in brackets, so that it parses as a URL", () => {
  assert.equal(httpOrigin("127.0.0.1", 8080), "http://127.0.0.1:8080");
  assert.equal(httpOrigin("::1", 8080), "http://[::1]:8080");
  assert.equal(new URL(httpOrigin("::1", 8080)).port, "8080");
  assert.equal(httpOrigin("localhost", 80), "http://localhost:80");
});
