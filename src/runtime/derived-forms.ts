// On-disk forms the peers and PISeL need, derived from a bundle (never faked): PISeL's self-contained
// stage files (weights inside, as PISeL loads a layer from its own file) and ort-best's whole model saved
// once after `all` optimisation with its weights external (what a careful Node.js user would do without
// us). Built outside any request's clock, cached, atomic under concurrent processes.
import { createHash } from "node:crypto";
import { existsSync } from "node:fs";
import { stat, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { CicadaError } from "../errors.js";
import { createOnce, writeOutputDir } from "../format/atomic-output.js";
import { readStageStructure, readStageWeights, type Bundle } from "../format/bundle.js";
import { decodeModel, encodeModel, externalLocation, isExternal } from "../format/onnx-io.js";
import { touchEntry, writeOrigin } from "./cache-root.js";
import { cpuSignature } from "./miniloader.js";
import { createSession, releaseSession, ORT_VERSION } from "./ort-adapter.js";

function bundleKey(bundle: Bundle): string {
  const h = createHash("sha256");
  for (const s of bundle.manifest.stages) h.update(`${s.index} ${s.weights.checksum} ${s.weights.length}\n`);
  return h.digest("hex").slice(0, 24);
}

/** Paths of PISeL's self-contained stage files (stage i: weights embedded), building them on first use. */
export async function ensurePiselStages(bundle: Bundle, cacheRoot: string): Promise<string[]> {
  const dir = join(cacheRoot, "pisel", bundleKey(bundle));
  const files = bundle.manifest.stages.map((s) =>
    join(dir, `stage-${String(s.index).padStart(3, "0")}.onnx`),
  );
  await createOnce(dir, () =>
    writeOutputDir(dir, async (tmp) => {
      writeOrigin(tmp, bundle.dir);
      for (const stage of bundle.manifest.stages) {
        const [structure, weights] = await Promise.all([
          readStageStructure(bundle, stage.index),
          readStageWeights(bundle, stage.index),
        ]);
        const model = decodeModel(structure, stage.file);
        for (const t of model.graph?.initializer ?? []) {
          if (!isExternal(t)) continue;
          const loc = externalLocation(t, stage.file);
          t.rawData = weights.subarray(loc.offset, loc.offset + loc.length);
          delete t.externalData;
          delete t.dataLocation;
        }
        await writeFile(join(tmp, `stage-${String(stage.index).padStart(3, "0")}.onnx`), encodeModel(model));
      }
    }),
  );
  touchEntry(dir);
  return files;
}

/** The original model a bundle was imported from (eager's input), refused clearly if it is gone. */
export function sourceModelOf(bundle: Bundle): string {
  const source = bundle.manifest.model.source;
  if (!existsSync(source)) {
    throw new CicadaError(
      "E_BUNDLE_FILE",
      `${bundle.dir}: the original model ${source} (needed by eager and ort-best) does not exist`,
    );
  }
  return source;
}

/** ort-best's model: the source optimised once at `all` and saved with external weights, keyed by CPU and runtime. */
export async function ensureOrtBestModel(bundle: Bundle, cacheRoot: string): Promise<string> {
  const source = sourceModelOf(bundle);
  const info = await stat(source);
  const key = createHash("sha256")
    .update(`${source}|${info.size}|${info.mtimeMs}|${ORT_VERSION}|${cpuSignature()}`)
    .digest("hex")
    .slice(0, 24);
  const dir = join(cacheRoot, "ort-best", key);
  await createOnce(dir, () =>
    writeOutputDir(dir, async (tmp) => {
      writeOrigin(tmp, source);
      const session = await createSession(source, {
        graphOptimizationLevel: "all",
        optimizedModelFilePath: join(tmp, "model.onnx"),
        sessionConfigEntries: {
          optimized_model_external_initializers_file_name: "model.data",
          optimized_model_external_initializers_min_size_in_bytes: "1024",
        },
        logSeverityLevel: 3,
      });
      await releaseSession(session);
    }),
  );
  touchEntry(dir);
  return join(dir, "model.onnx");
}
