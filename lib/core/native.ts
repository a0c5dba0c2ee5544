// Loads the native addon once per process (per worker thread: the addon is context-aware):
// prebuilds/ first, then build/, through node-gyp-build.
import * as path from 'path';
import type { Binding } from '../../binding';
import { MixtError } from './errors';

export const packageRoot = path.resolve(__dirname, '..', '..');

let binding: Binding | null = null;

function load(): Binding {
  let b: Binding;
  try {
    // eslint-disable-next-line @typescript-eslint/no-require-imports
    const nodeGypBuild = require('node-gyp-build') as (dir: string) => Binding;
    b = nodeGypBuild(packageRoot);
  } catch (e) {
    const why = e instanceof Error ? e.message.split('\n')[0] : String(e);
    throw new MixtError(
      `mixt: could not load the native addon for ${process.platform}-${process.arch} (Node ${process.version}): ${why}. ` +
        `No prebuilt binary fits this platform and no local build was found. Build it from the package directory ` +
        `with \`npm run build:native\` (needs cmake >= 3.18 and a C++17 compiler; nvcc adds the CUDA backend).`,
      'ERR_NATIVE_LOAD',
    );
  }
  b.setErrorClass(MixtError);
  return b;
}

export function native(): Binding {
  if (!binding) binding = load();
  return binding;
}
