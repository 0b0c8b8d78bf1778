// Runs an ONNX model with ONNX Runtime (the npm package onnxruntime-node)
// on inputs of any element type the exports use, for the Go tests of the
// class-conditional DCGAN exports (recipe_export_test.go). ort_run.js does
// the same for float32 inputs only.
//
// Usage: node ort_run_typed.js < request.json > response.json, with
// onnxruntime-node found through NODE_PATH. The request is
//   {"model": "/path/model.onnx",
//    "inputs": {"name": {"type": "float32" | "int64", "dims": [..], "data": [..]}, ...}}
// (type float32 when absent); the response lists every output as ort_run.js
// does, plus the ONNX Runtime version:
//   {"version": "1.x.y", "outputs": {"name": {"dims": [..], "data": [..]}, ...}}
'use strict';
const ort = require('onnxruntime-node');

function tensor(t) {
  switch (t.type || 'float32') {
    case 'float32':
      return new ort.Tensor('float32', Float32Array.from(t.data), t.dims);
    case 'int64':
      return new ort.Tensor('int64', BigInt64Array.from(t.data, (v) => BigInt(v)), t.dims);
  }
  throw new Error(`input type ${t.type}: want float32 or int64`);
}

async function main() {
  let raw = '';
  for await (const chunk of process.stdin) raw += chunk;
  const req = JSON.parse(raw);
  const session = await ort.InferenceSession.create(req.model, {graphOptimizationLevel: 'disabled'});
  const feeds = {};
  for (const [name, t] of Object.entries(req.inputs)) feeds[name] = tensor(t);
  const results = await session.run(feeds);
  const outputs = {};
  for (const [name, t] of Object.entries(results)) {
    outputs[name] = {dims: Array.from(t.dims), data: Array.from(t.data, Number)};
  }
  process.stdout.write(JSON.stringify({version: ort.env.versions ? ort.env.versions.common : '', outputs}));
}

main().catch((e) => {
  process.stderr.write(String(e && e.stack || e) + '\n');
  process.exit(1);
});
