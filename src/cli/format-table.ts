// Plain-text formatting shared by the commands: sizes and aligned tables.

/** Bytes as B/KiB/MiB/GiB with three significant digits. */
export function formatBytes(bytes: number): string {
  const units = ["B", "KiB", "MiB", "GiB", "TiB"];
  let v = bytes;
  let u = 0;
  while (v >= 1024 && u < units.length - 1) {
    v /= 1024;
    u++;
  }
  // toPrecision(3) would print 1000-1023 as "1.02e+3".
  return `${u === 0 || v >= 100 ? v.toFixed(0) : v.toPrecision(3)} ${units[u]}`;
}

/** Renders rows as an aligned table with a header line. */
export function table(header: string[], rows: (string | number)[][]): string {
  const cells = [header, ...rows.map((r) => r.map(String))];
  const widths = header.map((_, c) => Math.max(...cells.map((r) => (r[c] ?? "").length)));
  return (
    cells.map((r) => r.map((v, c) => (c === r.length - 1 ? v : v.padEnd(widths[c]!))).join("  ")).join("\n") +
    "\n"
  );
}

/** The per-stage timing table of a cold start. */
export function stageTable(
  stages: { stage: number; weightBytes: number; readMs: number; createMs: number; runMs: number }[],
): string {
  return table(
    ["stage", "weights", "read ms", "create ms", "run ms"],
    stages.map((s) => [
      s.stage,
      formatBytes(s.weightBytes),
      s.readMs.toFixed(1),
      s.createMs.toFixed(1),
      s.runMs.toFixed(1),
    ]),
  );
}
