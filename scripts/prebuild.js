#!/usr/bin/env node
// npm run prebuild: builds the addon with cmake-js (CUDA for sm_80 and sm_90a plus compute_90 PTX
// where nvcc is present, cudart linked statically) and writes a stripped copy to
// prebuilds/<platform>-<arch>/mixt.napi.node, the layout prebuildify makes and node-gyp-build
// reads. `npm pack` ships prebuilds/, so installs need no compiler and run no install script.
// The local build is never modified: a stripped copy is written beside the target and renamed
// into place, so processes that have a binary loaded keep a consistent file.
const { spawnSync } = require('child_process');
const fs = require('fs');
const path = require('path');

const root = path.resolve(__dirname, '..');
const cmakeJs = require.resolve('cmake-js/bin/cmake-js', { paths: [root] });
const built = spawnSync(process.execPath, [cmakeJs, 'compile', '--out', 'build'], { cwd: root, stdio: 'inherit' });
if (built.status !== 0) process.exit(built.status ?? 1);

const source = path.join(root, 'build', 'Release', 'mixt.node');
const dir = path.join(root, 'prebuilds', `${process.platform}-${process.arch}`);
fs.mkdirSync(dir, { recursive: true });
const target = path.join(dir, 'mixt.napi.node');
const tmp = `${target}.tmp-${process.pid}`;
fs.copyFileSync(source, tmp);
if (process.platform === 'linux' || process.platform === 'darwin') {
  const s = spawnSync('strip', process.platform === 'darwin' ? ['-Sx', tmp] : ['--strip-unneeded', tmp], { stdio: 'inherit' });
  if (s.status !== 0) console.error('prebuild: strip failed; shipping the unstripped binary');
}
fs.renameSync(tmp, target);
for (const f of fs.readdirSync(dir)) {
  if (f !== 'mixt.napi.node') fs.rmSync(path.join(dir, f), { force: true }); // older names
}
console.log(`prebuilt ${path.relative(root, target)} (${(fs.statSync(target).size / 2 ** 20).toFixed(1)} MiB)`);
