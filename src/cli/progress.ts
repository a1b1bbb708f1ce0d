// Progress of long work (model generation, imports) on stderr: a live bar on a terminal, and a line
// every 10 % elsewhere (CI logs), so stdout stays clean for --json.
import cliProgress from "cli-progress";

/** A progress sink: `update(done, total)` as work advances, `stop()` when finished. */
export interface Progress {
  update(done: number, total: number): void;
  stop(): void;
}

const MiB = 1024 * 1024;

/** A progress display for a byte count, labelled `label`. */
export function byteProgress(label: string, quiet = false): Progress {
  if (quiet) return { update() {}, stop() {} };
  if (process.stderr.isTTY) {
    const bar = new cliProgress.SingleBar(
      {
        stream: process.stderr,
        format: `${label} [{bar}] {percentage}% | {doneMiB}/{totalMiB} MiB | {duration_formatted}`,
        hideCursor: true,
      },
      cliProgress.Presets.shades_classic,
    );
    let started = false;
    return {
      update(done, total) {
        const payload = { doneMiB: (done / MiB).toFixed(0), totalMiB: (total / MiB).toFixed(0) };
        if (!started) {
          bar.start(Math.max(total, 1), done, payload);
          started = true;
        } else bar.update(done, payload);
      },
      stop() {
        if (started) bar.stop();
      },
    };
  }
  let nextTenth = 1;
  return {
    update(done, total) {
      while (total > 0 && done >= (nextTenth / 10) * total && nextTenth <= 10) {
        process.stderr.write(
          `${label}: ${nextTenth * 10}% (${(done / MiB).toFixed(0)}/${(total / MiB).toFixed(0)} MiB)\n`,
        );
        nextTenth++;
      }
    },
    stop() {},
  };
}
