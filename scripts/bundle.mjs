// The second half of `npm run build`: the package's entry points bundled from tsc's output (dist/) into
// dist/bundle/, one file per entry plus shared chunks, dependencies left as imports. Why: a fresh process
// pays per ES module it loads (~1 ms each on 2 cores), and `import("cicada-node")` loaded ~30 of them;
// bundled it loads a handful (measured: 30 -> 14 ms). Lazy parts (onnxruntime's adapter, protobuf code,
// MiniLoader's builder) stay lazy as chunks of their own. dist/bundle/ sits one level below dist/, as
// every source file sits one level below src/, so the paths the code resolves from its own URL (the
// stage worker, package.json, the CLI) resolve the same from the bundle.
import { build } from "esbuild";

await build({
  entryPoints: {
    index: "dist/index.js",
    serve: "dist/serve/index.js",
    tools: "dist/tools.js",
    // The stage worker: worker-pool starts `./stage-worker.js` beside itself.
    "stage-worker": "dist/runtime/stage-worker.js",
    // The cache's build thread: miniloader/build-thread starts `./build-worker.js` beside itself.
    "build-worker": "dist/runtime/miniloader/build-worker.js",
  },
  bundle: true,
  splitting: true,
  format: "esm",
  platform: "node",
  target: "node20",
  packages: "external",
  outdir: "dist/bundle",
  chunkNames: "chunk-[hash]",
  sourcemap: true,
  // The maps point at the sources (not shipped); their text would double the tarball.
  sourcesContent: false,
  logLevel: "warning",
});
