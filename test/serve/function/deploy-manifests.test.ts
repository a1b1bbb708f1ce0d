// The deployment files cannot be exercised here (no container engine, no cluster), so their structure is
// checked instead: the Knative and KServe manifests parse as YAML and have the fields those controllers
// require; every `cicada serve` flag they pass exists and is consistent with the rest (queue bound vs
// containerConcurrency, timeouts, port); the Dockerfile installs and starts what the project ships; and the
// Lambda entry point (compiled, as shipped) really starts an instance from its environment.
import { test } from "node:test";
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { existsSync } from "node:fs";
import { readFile, rm } from "node:fs/promises";
import { fileURLToPath } from "node:url";
import { Command } from "commander";
import { parse } from "yaml";
import { z } from "zod";
import { registerServe } from "../../../src/cli/commands/serve.js";
import { ensureBuilt } from "../../support/build.js";
import { tinyBundles } from "./serve-fixtures.js";

const ROOT = fileURLToPath(new URL("../../../", import.meta.url));
const read = (path: string) => readFile(`${ROOT}${path}`, "utf8");

const Container = z.object({
  name: z.string().min(1),
  image: z.string().regex(/^[\w.-]+(:\d+)?\/[\w./-]+:[\w.-]+$/),
  args: z.array(z.string()),
  ports: z.array(z.object({ containerPort: z.number().int() })).length(1),
  env: z.array(z.object({ name: z.string(), value: z.string() })),
  readinessProbe: z.object({ httpGet: z.object({ path: z.literal("/v2/health/ready") }) }),
});
const Knative = z.object({
  apiVersion: z.literal("serving.knative.dev/v1"),
  kind: z.literal("Service"),
  metadata: z.object({ name: z.string().regex(/^[a-z0-9-]+$/) }),
  spec: z.object({
    template: z.object({
      metadata: z.object({ annotations: z.record(z.string(), z.string()) }),
      spec: z.object({
        containerConcurrency: z.number().int().positive(),
        timeoutSeconds: z.number().int().positive(),
        containers: z
          .array(
            Container.extend({
              livenessProbe: z.object({ httpGet: z.object({ path: z.literal("/v2/health/live") }) }),
            }),
          )
          .length(1),
      }),
    }),
  }),
});
const KServe = z.object({
  apiVersion: z.literal("serving.kserve.io/v1beta1"),
  kind: z.literal("InferenceService"),
  metadata: z.object({ name: z.string().regex(/^[a-z0-9-]+$/) }),
  spec: z.object({
    predictor: z.object({
      minReplicas: z.literal(0),
      containerConcurrency: z.number().int().positive(),
      timeout: z.number().int().positive(),
      containers: z.array(Container.extend({ name: z.literal("kserve-container") })).length(1),
    }),
  }),
});

/** The flags `cicada serve` defines, from the command itself. */
function serveFlags(): Set<string> {
  const program = new Command();
  registerServe(program);
  const serve = program.commands.find((c) => c.name() === "serve")!;
  return new Set(serve.options.map((o) => o.long!));
}

/** The `--flag value` pairs of a container's args, checked against the command's flags. */
function flagsOf(args: string[]): Map<string, string> {
  const known = serveFlags();
  const flags = new Map<string, string>();
  assert.ok(!args[0]!.startsWith("--"), "the first argument is a bundle");
  for (let i = 1; i < args.length; i += 2) {
    assert.ok(known.has(args[i]!), `${args[i]} is a flag of cicada serve`);
    flags.set(args[i]!, args[i + 1]!);
  }
  return flags;
}

function checkContainer(c: z.infer<typeof Container>, concurrency: number, timeoutSeconds: number): void {
  const flags = flagsOf(c.args);
  assert.equal(flags.get("--host"), "0.0.0.0");
  assert.equal(Number(flags.get("--port")), c.ports[0]!.containerPort);
  assert.equal(c.ports[0]!.containerPort, 8080, "the port the Dockerfile exposes");
  assert.equal(concurrency, Number(flags.get("--max-queue")) + 1, "containerConcurrency = --max-queue + 1");
  assert.ok(
    timeoutSeconds * 1000 > Number(flags.get("--timeout-ms")),
    "the platform's timeout exceeds the server's",
  );
  assert.ok(c.args[0]!.startsWith("/models/"));
  assert.ok(c.env.some((e) => e.name === "CICADA_CACHE" && e.value.startsWith("/tmp/")));
}

test("the Knative Service and the KServe InferenceService are well-formed and agree with cicada serve", async () => {
  const knative = Knative.parse(parse(await read("deploy/knative-service.yaml")));
  const t = knative.spec.template;
  checkContainer(t.spec.containers[0]!, t.spec.containerConcurrency, t.spec.timeoutSeconds);
  assert.equal(t.metadata.annotations["autoscaling.knative.dev/min-scale"], "0");
  const kserve = KServe.parse(parse(await read("deploy/kserve-inferenceservice.yaml")));
  const p = kserve.spec.predictor;
  checkContainer(p.containers[0]!, p.containerConcurrency, p.timeout);
  assert.throws(() => flagsOf(["/models/b", "--turbo", "1"]), /--turbo is a flag of cicada serve/);
});

test("the Dockerfile compiles in a build stage, installs production dependencies without downloads and starts cicada serve", async () => {
  const lines = (await read("Dockerfile")).split("\n").filter((l) => l && !l.startsWith("#"));
  assert.match(lines[0]!, /^FROM node:20-slim AS build$/);
  const all = lines.map((l) => l.trim());
  const runtimeStage = all.indexOf("FROM node:20-slim AS runtime");
  assert.ok(runtimeStage > 0, "a runtime stage follows the build stage");
  const buildSteps = all.slice(0, runtimeStage);
  assert.ok(buildSteps.includes("RUN npm run build"), "the build stage compiles");
  const steps = all.slice(runtimeStage);
  const npmrc = steps.findIndex((l) => l.startsWith("COPY") && l.includes(".npmrc"));
  const install = steps.findIndex((l) => l.startsWith("RUN npm ci --omit=dev"));
  assert.ok(npmrc >= 0 && npmrc < install, ".npmrc is in place before npm ci");
  // The runtime runs compiled JavaScript: dist/ from the build stage, no sources, no tsx.
  assert.ok(steps.includes("COPY --from=build /app/dist ./dist"), "dist/ comes from the build stage");
  assert.ok(!steps.some((l) => l.startsWith("COPY src")), "the runtime image holds no TypeScript sources");
  assert.match(await read(".npmrc"), /^onnxruntime-node-install=skip$/m);
  const ignored = (await read(".dockerignore")).split("\n").filter((l) => l && !l.startsWith("#"));
  for (const step of all.filter((l) => l.startsWith("COPY") && !l.includes("--from"))) {
    for (const source of step.split(/\s+/).slice(1, -1)) {
      assert.ok(existsSync(`${ROOT}${source}`), `${source} exists`);
      assert.ok(!ignored.includes(source), `${source} is not in .dockerignore`);
    }
  }
  assert.ok(steps.includes('ENTRYPOINT ["node", "bin/cicada.js", "serve"]'));
  const cmd = JSON.parse(steps.find((l) => l.startsWith("CMD "))!.slice(4)) as string[];
  assert.deepEqual(
    [...flagsOf(cmd)],
    [
      ["--host", "0.0.0.0"],
      ["--port", "8080"],
    ],
  );
  assert.ok(steps.includes("EXPOSE 8080"));
  // The function image is prepared at build time: no request builds MiniLoader's cache.
  const fn = all.indexOf("FROM runtime AS function");
  assert.ok(
    fn > 0 &&
      all.slice(fn).some((l) => l.startsWith('RUN ["node", "bin/cicada.js", "prepare", "/models/bundle"')),
    "the function stage runs cicada prepare on its bundle",
  );
  const pkg = JSON.parse(await read("package.json")) as { dependencies: Record<string, string> };
  assert.equal(pkg.dependencies.tsx, undefined, "tsx is a development dependency only");
});

test("the Lambda entry point starts an instance from its environment and answers an event", async () => {
  // bin/lambda-handler.js runs the compiled package, as Lambda does.
  await ensureBuilt();
  const fx = await tinyBundles("lambda-entry", { "tiny-resnet": 2 });
  try {
    const script = `
      const { handler } = await import(${JSON.stringify(`${ROOT}bin/lambda-handler.js`)});
      const r = await handler({ version: "2.0", rawPath: "/v2/repository/index", rawQueryString: "", headers: {},
        requestContext: { http: { method: "POST" } }, isBase64Encoded: false });
      process.stdout.write(JSON.stringify(r));
      await handler.instance.close();`;
    const child = spawn(process.execPath, ["--input-type=module", "-e", script], {
      env: {
        ...process.env,
        CICADA_BUNDLES: fx.bundles["tiny-resnet"]!,
        CICADA_CACHE: fx.cache,
        CICADA_WORKERS: "1",
      },
      stdio: ["ignore", "pipe", "pipe"],
    });
    let out = "";
    let err = "";
    child.stdout.on("data", (d: Buffer) => (out += d.toString()));
    child.stderr.on("data", (d: Buffer) => (err += d.toString()));
    const timer = setTimeout(() => child.kill("SIGKILL"), 30_000);
    const code = await new Promise<number | null>((r) => child.once("exit", r));
    clearTimeout(timer);
    assert.equal(code, 0, err);
    const result = JSON.parse(out) as { statusCode: number; body: string };
    assert.equal(result.statusCode, 200);
    assert.deepEqual(JSON.parse(result.body), [
      { name: "tiny-resnet", version: "1", state: "UNAVAILABLE", reason: "" },
    ]);
    assert.match(err, /cicada lambda: prepared tiny-resnet/);
  } finally {
    await rm(fx.root, { recursive: true, force: true });
  }
});
