// The one table of HTTP statuses and the one JSON error body, as the function server, its adapters and
// the platform's gateway all answer: client errors by code, the platform's own codes (502 for an
// instance that died, 503 for no memory), 500 for the rest, E_INTERNAL for a non-coded error, Retry-After
// on E_SERVER_BUSY and the code in x-cicada-error. The gateway's answers over HTTP are in
// test/serve/platform/gateway.test.ts.
import { test } from "node:test";
import assert from "node:assert/strict";
import { CicadaError, type ErrorCode } from "../../../src/errors.js";
import { errorResponse, json, statusOf } from "../../../src/serve/function/protocol-errors.js";

test("each code has its status; uncoded and server-side failures are 500", () => {
  const expected: [ErrorCode, number][] = [
    ["E_REQUEST", 400],
    ["E_MODEL_UNKNOWN", 404],
    ["E_METHOD_NOT_ALLOWED", 405],
    ["E_BODY_TOO_SLOW", 408],
    ["E_BODY_TOO_LARGE", 413],
    ["E_QUEUE_FULL", 429],
    ["E_INSTANCE_DIED", 502],
    ["E_SERVER_BUSY", 503],
    ["E_HOST_MEMORY", 503],
    ["E_TIMEOUT", 504],
    ["E_RUNTIME", 500],
    ["E_BUNDLE_CHECKSUM", 500],
  ];
  for (const [code, status] of expected) assert.equal(statusOf(new CicadaError(code, "x")), status, code);
  assert.equal(statusOf(new Error("bug")), 500);
});

test("an error leaves as {error, code} with its status, x-cicada-error and, when busy, Retry-After", async () => {
  const died = errorResponse(new CicadaError("E_INSTANCE_DIED", "instance i1 exited"), { "x-extra": "1" });
  assert.equal(died.status, 502);
  assert.equal(died.headers.get("content-type"), "application/json");
  assert.equal(died.headers.get("x-cicada-error"), "E_INSTANCE_DIED");
  assert.equal(died.headers.get("x-extra"), "1");
  assert.equal(died.headers.get("retry-after"), null);
  assert.deepEqual(await died.json(), { error: "instance i1 exited", code: "E_INSTANCE_DIED" });
  const busy = errorResponse(new CicadaError("E_SERVER_BUSY", "full"));
  assert.equal(busy.status, 503);
  assert.equal(busy.headers.get("retry-after"), "1");
  const bug = errorResponse(new TypeError("x is undefined"));
  assert.equal(bug.status, 500);
  assert.deepEqual(await bug.json(), { error: "internal error: x is undefined", code: "E_INTERNAL" });
  const ok = json(200, { live: true });
  assert.equal(ok.headers.get("content-type"), "application/json");
  assert.deepEqual(await ok.json(), { live: true });
});
