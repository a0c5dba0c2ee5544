#!/usr/bin/env node
// npm run prebuild: builds the addon (CUDA for sm_80 and sm_90a plus compute_90 PTX where nvcc is
// present, cudart linked statically) and writes the stripped binary to
// prebuilds/<platform>-<arch>/node.napi.node, where node-gyp-build finds it first. `npm pack`
// ships prebuilds/, so installs need no compiler and run no install script.
const { spawnSync } = require('child_process');
const fs = require('fs');
const path = require('path');

const root = path.resolve(__dirname, '..');
const shim = path.join(__dirname, 'node-gyp-shim.js');
fs.chmodSync(shim, 0o755);
const prebuildify = require.resolve('prebuildify/bin.js', { paths: [root] });
const r = spawnSync(process.execPath, [prebuildify, '--napi', '--strip', '--node-gyp', shim], { cwd: root, stdio: 'inherit' });
if (r.status !== 0) process.exit(r.status ?? 1);
const dir = path.join(root, 'prebuilds', `${process.platform}-${process.arch}`);
// prebuildify moves the build output; keep a copy where local builds live.
const local = path.join(root, 'build', 'Release', 'mixt.node');
if (!fs.existsSync(local) && fs.existsSync(path.join(dir, 'mixt.node'))) fs.copyFileSync(path.join(dir, 'mixt.node'), local);
for (const f of fs.readdirSync(dir)) {
  const st = fs.statSync(path.join(dir, f));
  console.log(`prebuilt ${path.relative(root, path.join(dir, f))} (${(st.size / 2 ** 20).toFixed(1)} MiB)`);
}
