// Runs an ONNX model with ONNX Runtime (the npm package onnxruntime-node)
// for the Go tests of package onnx/models.
//
// Usage: node ort_run.js < request.json > response.json, with
// onnxruntime-node found through NODE_PATH. The request is
//   {"model": "/path/model.onnx", "inputs": {"name": {"dims": [..], "data": [..]}, ...}}
// (float32 tensors); the response lists every output the same way, plus
// the ONNX Runtime version:
//   {"version": "1.x.y", "outputs": {"name": {"dims": [..], "data": [..]}, ...}}
'use strict';
const ort = require('onnxruntime-node');

async function main() {
  let raw = '';
  for await (const chunk of process.stdin) raw += chunk;
  const req = JSON.parse(raw);
  const session = await ort.InferenceSession.create(req.model, {graphOptimizationLevel: 'disabled'});
  const feeds = {};
  for (const [name, t] of Object.entries(req.inputs)) {
    feeds[name] = new ort.Tensor('float32', Float32Array.from(t.data), t.dims);
  }
  const results = await session.run(feeds);
  const outputs = {};
  for (const [name, t] of Object.entries(results)) {
    outputs[name] = {dims: Array.from(t.dims), data: Array.from(t.data)};
  }
  process.stdout.write(JSON.stringify({version: ort.env.versions ? ort.env.versions.common : '', outputs}));
}

main().catch((e) => {
  process.stderr.write(String(e && e.stack || e) + '\n');
  process.exit(1);
});
