// `cicada serve <bundle>...`: one function instance as an HTTP server speaking the Open Inference Protocol.
// When it listens it prints one JSON line on stdout ({"event":"listening",host,port,pid}: how a platform
// that spawned it learns the port); everything else goes to stderr. SIGTERM or SIGINT: stop accepting,
// finish the requests in flight (at most --timeout-ms), dispose the models, exit 0. A slow client is cut
// off with 408: headers slower than --header-timeout-ms, a body slower than --min-body-rate once
// --body-timeout-ms has passed (a body still arriving holds no place in a model's queue); the bytes held
// in bodies still arriving are bounded server-wide by --max-receiving-bytes (503 E_SERVER_BUSY past it).
import type { Command } from "commander";
import { STRATEGIES } from "../../config.js";
import { INSTANCE_DEFAULTS, startInstance } from "../../serve/function/function-instance.js";
import { listeningLine } from "../../serve/function/listening-line.js";
import { listen } from "../../serve/function/node-adapter.js";
import { PACE_DEFAULTS, RECEIVING_BODIES } from "../../serve/function/request-body.js";
import { choiceFlag, intFlag } from "../flags.js";

interface ServeFlags {
  memoryBudgetMb?: string;
  host: string;
  port: string;
  strategy: string;
  stateless?: boolean;
  workers: string;
  maxBodyBytes: string;
  maxReceivingBytes?: string;
  maxQueue: string;
  timeoutMs: string;
  headerTimeoutMs: string;
  bodyTimeoutMs: string;
  minBodyRate: string;
  cacheRoot?: string;
}

const log = (line: string) => process.stderr.write(`cicada serve: ${line}\n`);

export function registerServe(program: Command): void {
  const d = INSTANCE_DEFAULTS;
  program
    .command("serve")
    .description(
      "serve bundles over HTTP (Open Inference Protocol / KServe v2), cold-starting them on demand",
    )
    .argument("<bundles...>", "bundle directories; each is served under its manifest's model name")
    .option("--host <addr>", "address to listen on", "127.0.0.1")
    .option("--port <n>", "port to listen on (0: an ephemeral port, printed on stdout)", "8080")
    .option("--strategy <s>", `cold-start strategy: ${STRATEGIES.join(", ")}`, d.strategy)
    .option("--stateless", "load the model for every request and dispose it after answering")
    .option("--workers <n>", "stage worker threads", String(d.workers))
    .option("--max-body-bytes <n>", "largest request body (413 past it)", String(d.maxBodyBytes))
    .option(
      "--max-receiving-bytes <n>",
      `bytes all request bodies still arriving may hold together (503 past it; default ${RECEIVING_BODIES} × --max-body-bytes: ${d.maxReceivingBytes})`,
    )
    .option(
      "--max-queue <n>",
      "requests per model admitted besides the one running (429 past it)",
      String(d.maxQueue),
    )
    .option(
      "--timeout-ms <n>",
      "per-request limit (504 past it); also the shutdown grace period",
      String(d.timeoutMs),
    )
    .option(
      "--header-timeout-ms <n>",
      "the request line and headers must arrive within it (408 past it)",
      String(PACE_DEFAULTS.headerTimeoutMs),
    )
    .option(
      "--body-timeout-ms <n>",
      "a request body's grace period, extended by 1 s per --min-body-rate bytes received (408 past it)",
      String(PACE_DEFAULTS.bodyTimeoutMs),
    )
    .option(
      "--min-body-rate <bytes/s>",
      "the rate a request body must keep up after its grace period",
      String(PACE_DEFAULTS.minBytesPerSecond),
    )
    .option("--cache-root <dir>", "cache of derived forms (default: $CICADA_CACHE or ~/.cache/cicada)")
    .option(
      "--memory-budget-mb <n>",
      "every load's memory budget in MiB (default: the machine's or the cgroup's limit); a model that cannot fit is answered 507 E_MEMORY_BUDGET",
    )
    .action(async (bundles: string[], flags: ServeFlags) => {
      // Every flag is checked before anything starts.
      const timeoutMs = intFlag("--timeout-ms", flags.timeoutMs, 1);
      const port = intFlag("--port", flags.port, 0, 65535);
      const headerTimeoutMs = intFlag("--header-timeout-ms", flags.headerTimeoutMs, 1);
      const pace = {
        bodyTimeoutMs: intFlag("--body-timeout-ms", flags.bodyTimeoutMs, 1),
        minBytesPerSecond: intFlag("--min-body-rate", flags.minBodyRate, 1),
      };
      const maxBodyBytes = intFlag("--max-body-bytes", flags.maxBodyBytes, 1);
      const maxReceivingBytes =
        flags.maxReceivingBytes === undefined
          ? undefined
          : intFlag("--max-receiving-bytes", flags.maxReceivingBytes, 1);
      const options = {
        bundles,
        strategy: choiceFlag("--strategy", flags.strategy, STRATEGIES),
        stateless: flags.stateless ?? false,
        workers: intFlag("--workers", flags.workers, 1, 64),
        maxBodyBytes,
        ...(maxReceivingBytes !== undefined ? { maxReceivingBytes } : {}),
        maxQueue: intFlag("--max-queue", flags.maxQueue, 0),
        timeoutMs,
        ...(flags.cacheRoot ? { cacheRoot: flags.cacheRoot } : {}),
        ...(flags.memoryBudgetMb
          ? { memoryBudgetBytes: intFlag("--memory-budget-mb", flags.memoryBudgetMb, 1) * 2 ** 20 }
          : {}),
        log,
      };
      const instance = await startInstance(options);
      let server;
      try {
        server = await listen((r) => instance.server.handle(r), {
          host: flags.host,
          port,
          headerTimeoutMs,
          pace,
          allow: (path) => instance.server.allowed(path),
          log,
        });
      } catch (e) {
        await instance.close();
        throw e;
      }
      process.stdout.write(listeningLine(server.host, server.port));
      log(
        `serving ${instance.host.names().join(", ")} on http://${server.host}:${server.port} (strategy ${options.strategy})`,
      );
      await new Promise<void>((resolve) => {
        const stop = (signal: string) => {
          log(`${signal}: draining ${server.inFlight} in-flight request(s)`);
          instance.server.drain();
          // Disposal waits for work already running on a model; if that never ends, do not wait forever.
          const stuck = setTimeout(() => {
            log(`models not disposed ${timeoutMs} ms after the last request: exiting anyway`);
            process.exit(1);
          }, 2 * timeoutMs);
          stuck.unref();
          void server
            .close(timeoutMs)
            .then((finished) => {
              if (!finished) log(`requests still running after ${timeoutMs} ms were cut off`);
              return instance.close();
            })
            .then(() => log("stopped"))
            .catch((e: unknown) => {
              log(`shutdown failed: ${(e as Error).message}`);
              process.exitCode = 1;
            })
            .finally(() => {
              clearTimeout(stuck);
              resolve();
            });
        };
        process.once("SIGTERM", () => stop("SIGTERM"));
        process.once("SIGINT", () => stop("SIGINT"));
      });
    });
}
