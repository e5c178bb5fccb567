// Shared by the reference scripts: tfjs 4.22 (CPU backend) from face-api's ESM bundle, and a .npy reader.
import fs from 'node:fs';
import path from 'node:path';
import { pathToFileURL } from 'node:url';

// tfjs from $LIKENESS_CACHE/face-api-1.7.15/face-api.esm.js (also returns the face-api module) on its CPU backend.
export async function loadTfjs(faceApiDir) {
  // The bundle's Node platform shim breaks (`this.util.TextEncoder is not a constructor`); posing as a browser
  // makes tfjs use the global TextEncoder/fetch instead. Must be set before the bundle is imported.
  globalThis.window = globalThis;
  globalThis.window.document = {};
  const faceapi = await import(pathToFileURL(path.join(faceApiDir, 'face-api.esm.js')).href);
  await faceapi.tf.setBackend('cpu');
  await faceapi.tf.ready();
  return { tf: faceapi.tf, faceapi };
}

// A C-order float32 .npy file as { data: Float32Array, shape }.
export function readNpy(file) {
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
