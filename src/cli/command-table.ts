// The `cicada` command's subcommands, loaded lazily: each command's module (and everything it imports:
// the runtime, onnxruntime, the server, the report code) is imported only when that command runs or its
// own help is asked for. `cicada --help` lists every command from this table alone, with stubs that carry
// each command's usage term and description; test/cli/lazy-commands.test.ts checks that the listing is
// the one the commands themselves register.
import { Command, Help } from "commander";

/** A subcommand: how the root help lists it, and how to load its registration. */
export interface CommandEntry {
  name: string;
  /** The usage term in the root help, e.g. `run [options] <target>`. */
  term: string;
  /** The description in the root help (the command's own description). */
  description: string;
  load: () => Promise<(program: Command) => void>;
}

/** Every subcommand, in the order of the root help. */
export const COMMANDS: readonly CommandEntry[] = [
  {
    name: "demo",
    term: "demo [options]",
    description:
      "generate, import and cold-start a zoo model with cicada (default resnet50), printing each stage's timings",
    load: async () => (await import("./commands/demo.js")).registerDemo,
  },
  {
    name: "zoo",
    term: "zoo [options] <name>",
    description: "list the zoo (`zoo list`) or write one model as model.onnx + external data",
    load: async () => (await import("./commands/zoo.js")).registerZoo,
  },
  {
    name: "import",
    term: "import [options] <model>",
    description: "split an ONNX model into a bundle of stages (structure graphs + one weights file)",
    load: async () => (await import("./commands/import.js")).registerImport,
  },
  {
    name: "inspect",
    term: "inspect [options] <bundle>",
    description: "print a bundle's stages (weights, inputs, outputs, op counts)",
    load: async () => (await import("./commands/inspect.js")).registerInspect,
  },
  {
    name: "prepare",
    term: "prepare [options] <bundles...>",
    description: "build every cached form the strategies need (deploy time), so that no request pays for it",
    load: async () => (await import("./commands/prepare.js")).registerPrepare,
  },
  {
    name: "run",
    term: "run [options] <target>",
    description: "cold-start a bundle or an .onnx model and run it once",
    load: async () => (await import("./commands/run.js")).registerRun,
  },
  {
    name: "bench",
    term: "bench [options]",
    description: "compare the cold start of the strategies side by side (interleaved, repeated)",
    load: async () => (await import("./commands/bench.js")).registerBench,
  },
  {
    name: "report",
    term: "report [options] <dirs...>",
    description: "write report.md and SVG charts from cicada bench --out directories (or trees of them)",
    load: async () => (await import("./commands/report.js")).registerReport,
  },
  {
    name: "cache",
    term: "cache",
    description: "list or prune the cache of generated models and derived forms ($CICADA_CACHE)",
    load: async () => (await import("./commands/cache.js")).registerCache,
  },
  {
    name: "serve",
    term: "serve [options] <bundles...>",
    description:
      "serve bundles over HTTP (Open Inference Protocol / KServe v2), cold-starting them on demand",
    load: async () => (await import("./commands/serve.js")).registerServe,
  },
  {
    name: "bench-serve",
    term: "bench-serve [options]",
    description: "cold and warm inference latency over HTTP (cicada serve) per strategy, vs in-process",
    load: async () => (await import("./commands/bench-serve.js")).registerBenchServe,
  },
  {
    name: "platform",
    term: "platform [options]",
    description:
      "a gateway (Open Inference Protocol) in front of a pool of cicada serve instances, run by a policy",
    load: async () => (await import("./commands/platform.js")).registerPlatform,
  },
  {
    name: "replay",
    term: "replay [options]",
    description: "replay an invocation trace open loop against the platform, per policy x strategy",
    load: async () => (await import("./commands/replay.js")).registerReplay,
  },
];

/** The root command, without subcommands. */
export function rootCommand(): Command {
  return new Command("cicada")
    .description("Pipelined cold start of ONNX models on Node.js (the Cicada design)")
    .version("0.1.0")
    .exitOverride()
    .showHelpAfterError();
}

/**
 * The subcommand that `args` (the arguments after the script) run, or whose help they ask for
 * (`help NAME`); undefined for the root's own help and version, or no command.
 */
export function commandOf(args: readonly string[]): string | undefined {
  const words = args.filter((a) => !a.startsWith("-"));
  return words[0] === "help" ? words[1] : words[0];
}

/**
 * Adds every subcommand to `program`: the one named `wanted` registered by its module (loaded now), the
 * others as stubs that only list themselves in the root help (never run: a command runs only when named).
 */
export async function addCommands(program: Command, wanted: string | undefined): Promise<void> {
  const stubs = new Map<Command, CommandEntry>();
  for (const entry of COMMANDS) {
    if (entry.name === wanted) {
      (await entry.load())(program);
    } else {
      stubs.set(program.command(entry.name).description(entry.description), entry);
    }
  }
  const help = new Help();
  program.configureHelp({ subcommandTerm: (cmd) => stubs.get(cmd)?.term ?? help.subcommandTerm(cmd) });
}

/** Adds every subcommand registered by its module (all loaded): what the stubs stand for. */
export async function addAllCommands(program: Command): Promise<void> {
  for (const entry of COMMANDS) (await entry.load())(program);
}
