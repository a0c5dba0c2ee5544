#!/usr/bin/env node
// prebuildify drives node-gyp (`node-gyp rebuild --target=... --release`); mixt builds with
// cmake-js. This stands in for node-gyp: whatever the arguments, it builds build/Release/mixt.node
// with cmake-js (N-API: one binary serves every Node version, so the target is irrelevant).
const { spawnSync } = require('child_process');
const path = require('path');

const root = path.resolve(__dirname, '..');
const cmakeJs = require.resolve('cmake-js/bin/cmake-js', { paths: [root] });
const r = spawnSync(process.execPath, [cmakeJs, 'compile', '--out', 'build'], { cwd: root, stdio: 'inherit' });
process.exit(r.status ?? 1);
