// Reference descriptors from face-api's own runtime (tfjs 4.22, CPU backend) for tests/test_face_id.py.
// Usage: node face_api_descriptor.mjs FACE_API_DIR CHIPS.npy OUT.json
//   FACE_API_DIR: $LIKENESS_CACHE/face-api-1.7.15 (face-api.esm.js + face_recognition_model weights)
//   CHIPS.npy:    float32 (N, 150, 150, 3) RGB in 0-255, C order
//   OUT.json:     {"descriptors": [[128 numbers] x N]}
import fs from 'node:fs';
import path from 'node:path';
import { pathToFileURL } from 'node:url';

// The bundle's Node platform shim breaks (`this.util.TextEncoder is not a constructor`); posing as a browser
// makes tfjs use the global TextEncoder/fetch instead. Must be set before the bundle is imported.
globalThis.window = globalThis;
globalThis.window.document = {};

const [dir, chipsPath, outPath] = process.argv.slice(2);
const faceapi = await import(pathToFileURL(path.join(dir, 'face-api.esm.js')).href);
const tf = faceapi.tf;
await tf.setBackend('cpu');
await tf.ready();

function readNpy(file) {
  // .npy v1/v2: magic, version, header length, a Python-dict header, then the raw little-endian data.
  const buf = fs.readFileSync(file);
  const major = buf[6];
  const headerLen = major === 1 ? buf.readUInt16LE(8) : buf.readUInt32LE(8);
  const start = (major === 1 ? 10 : 12) + headerLen;
  const header = buf.toString('latin1', start - headerLen, start);
  if (!header.includes("'descr': '<f4'") || header.includes("'fortran_order': True")) {
    throw new Error(`${file}: expected a C-order float32 array, got header ${header}`);
  }
  const shape = header.match(/'shape': \(([^)]*)\)/)[1].split(',').filter((s) => s.trim()).map(Number);
  const data = new Float32Array(buf.buffer.slice(buf.byteOffset + start, buf.byteOffset + buf.length));
  return { data, shape };
}

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
