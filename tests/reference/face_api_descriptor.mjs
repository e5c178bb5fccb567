// Reference descriptors from face-api's own runtime (tfjs 4.22, CPU backend) for tests/test_face_id.py.
// Usage: node face_api_descriptor.mjs FACE_API_DIR CHIPS.npy OUT.json
//   FACE_API_DIR: $LIKENESS_CACHE/face-api-1.7.15 (face-api.esm.js + face_recognition_model weights)
//   CHIPS.npy:    float32 (N, 150, 150, 3) RGB in 0-255, C order
//   OUT.json:     {"descriptors": [[128 numbers] x N]}
import fs from 'node:fs';
import path from 'node:path';
import { loadTfjs, readNpy } from './tfjs_cpu.mjs';

const [dir, chipsPath, outPath] = process.argv.slice(2);
const { tf, faceapi } = await loadTfjs(dir);

const manifest = JSON.parse(fs.readFileSync(path.join(dir, 'face_recognition_model-weights_manifest.json')));
const bin = fs.readFileSync(path.join(dir, 'face_recognition_model.bin'));
const weights = tf.io.decodeWeights(bin.buffer.slice(bin.byteOffset, bin.byteOffset + bin.length),
  manifest.flatMap((group) => group.weights));
faceapi.nets.faceRecognitionNet.loadFromWeightMap(weights);

const { data, shape } = readNpy(chipsPath);
const batch = tf.tensor4d(data, shape);
// A list of 150x150 images: face-api neither pads nor resizes them, so the net sees exactly these pixels.
const descriptors = await faceapi.nets.faceRecognitionNet.computeFaceDescriptor(tf.unstack(batch));
const list = Array.isArray(descriptors) ? descriptors : [descriptors];
fs.writeFileSync(outPath, JSON.stringify({ descriptors: list.map((d) => Array.from(d)) }));
