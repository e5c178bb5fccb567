// Reference embeddings of HSE FaceRec from tfjs's own graph-model executor (tfjs 4.22, CPU) for tests/test_faceres.py.
// Usage: node faceres_embedding.mjs FACE_API_DIR FACERES_JSON CROPS.npy OUT.json
//   FACE_API_DIR: $LIKENESS_CACHE/face-api-1.7.15 (its face-api.esm.js bundles tfjs)
//   FACERES_JSON: $LIKENESS_CACHE/human-models-3.0.4/faceres.json (faceres.bin beside it)
//   CROPS.npy:    float32 (N, 224, 224, 3) RGB in 0-255, C order
//   OUT.json:     {"embeddings": [[1024 numbers] x N]}: global_pooling/Mean, not normalised
import fs from 'node:fs';
import path from 'node:path';
import { loadTfjs, readNpy } from './tfjs_cpu.mjs';

const [faceApiDir, modelPath, cropsPath, outPath] = process.argv.slice(2);
const { tf } = await loadTfjs(faceApiDir);

const model = JSON.parse(fs.readFileSync(modelPath));
const shards = model.weightsManifest.flatMap((group) => group.paths);
const bin = Buffer.concat(shards.map((shard) => fs.readFileSync(path.join(path.dirname(modelPath), shard))));
const graph = await tf.loadGraphModel(tf.io.fromMemory({
  modelTopology: model.modelTopology,
  format: model.format,
  weightSpecs: model.weightsManifest.flatMap((group) => group.weights),
  weightData: bin.buffer.slice(bin.byteOffset, bin.byteOffset + bin.length),
}));

const { data, shape } = readNpy(cropsPath);
const embeddings = graph.execute(tf.tensor4d(data, shape), 'global_pooling/Mean');
fs.writeFileSync(outPath, JSON.stringify({ embeddings: await embeddings.array() }));
