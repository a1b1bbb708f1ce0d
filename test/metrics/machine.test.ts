// The machine description: CPU flags and sysfs choices parsed, and this machine described sanely.
import { test } from "node:test";
import assert from "node:assert/strict";
import { cpuFlags, describeMachine, selectedChoice } from "../../src/metrics/machine.js";

test("cpuFlags reads the x86 flags line and the Arm Features line", () => {
  const x86 =
    "processor\t: 0\nmodel name\t: AMD EPYC\nflags\t\t: fpu sse2 avx avx2 fma hypervisor\nbugs\t\t: none\n";
  assert.deepEqual([...cpuFlags(x86)], ["fpu", "sse2", "avx", "avx2", "fma", "hypervisor"]);
  assert.ok(cpuFlags("Features\t: fp asimd aes\n").has("asimd"));
  assert.equal(cpuFlags("").size, 0);
});

test("selectedChoice reads the bracketed value of a sysfs setting", () => {
  assert.equal(selectedChoice("always [madvise] never\n"), "madvise");
  assert.equal(selectedChoice("always madvise never"), null);
});

test("describeMachine describes this machine", () => {
  const m = describeMachine("1.2.3");
  assert.equal(m.ortVersion, "1.2.3");
  assert.ok(m.cores >= 1);
  assert.ok(m.totalMemoryBytes > 0);
  assert.equal(m.nodeVersion, process.versions.node);
  assert.ok(Array.isArray(m.cpuFeatures));
  assert.ok(m.loadAverage1m >= 0);
});
