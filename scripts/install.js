#!/usr/bin/env node
// `npm install` in a clone of mixt: build the native addon unless a loadable binary (a prebuild
// or an earlier build) is already there. Installs of the published package never run this (npm 11
// does not run dependencies' install scripts): they load the prebuilt binary from prebuilds/.
const { spawnSync } = require('child_process');
const path = require('path');
const fs = require('fs');

const root = path.resolve(__dirname, '..');
const fromSource = process.env.npm_config_build_from_source === 'true' || process.env.MIXT_BUILD_FROM_SOURCE === '1';

if (!fromSource) {
  try {
    require('node-gyp-build')(root);
    process.exit(0);
  } catch {
    // no usable binary: build one
  }
}

const cmakeJs = path.join(root, 'node_modules', 'cmake-js', 'bin', 'cmake-js');
if (!fs.existsSync(cmakeJs)) {
  console.error('mixt: no prebuilt binary for this platform and no build tools (cmake-js) installed; ' +
    'mixt will report this when loaded. To build: npm install --include=dev && npm run build:native');
  process.exit(0);
}
const r = spawnSync(process.execPath, [cmakeJs, 'compile', '--out', 'build'], { cwd: root, stdio: 'inherit' });
process.exit(r.status ?? 1);
