// Loads the native addon once per thread (the addon is context-aware), through node-gyp-build: a
// local build (build/Release) when there is one, else the prebuilt binary for this platform
// (prebuilds/<platform>-<arch>/), which is what installed packages carry.
//
// Crash isolation: the first load of a given binary on this machine is tried in a child process
// (loading the library and querying CUDA, where a broken driver or binary would kill the process).
// A crash there becomes a MixtError (ERR_NATIVE_LOAD) here instead of a segfault of the service.
// The verdict is cached per binary (path, size, mtime, Node ABI) in the temp directory.
// MIXT_SKIP_LOAD_CHECK=1 skips the child. MIXT_ADDON=<file.node> loads that binary instead.
import { spawnSync } from 'child_process';
import { createHash } from 'crypto';
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import type { Binding } from '../../binding';
import { MixtError } from './errors';

export const packageRoot = path.resolve(__dirname, '..', '..');

let binding: Binding | null = null;

type NodeGypBuild = ((dir: string) => Binding) & { resolve?: (dir: string) => string; path?: (dir: string) => string };

function nodeGypBuild(): NodeGypBuild {
  // eslint-disable-next-line @typescript-eslint/no-require-imports
  return require('node-gyp-build') as NodeGypBuild;
}

function loadError(why: string): MixtError {
  return new MixtError(
    `mixt: could not load the native addon for ${process.platform}-${process.arch} (Node ${process.version}): ${why}. ` +
      `Reinstall a mixt version with a prebuilt binary for this platform, or build it from the package directory ` +
      `with \`npm run build:native\` (needs cmake >= 3.18 and a C++17 compiler; nvcc adds the CUDA backend).`,
    'ERR_NATIVE_LOAD',
  );
}

// The binary node-gyp-build would load, without loading it.
export function binaryPath(): string {
  // MIXT_ADDON: an explicit binary (a sanitizer or debug build: npm run test:sanitize)
  if (process.env.MIXT_ADDON) return path.resolve(process.env.MIXT_ADDON);
  const ngb = nodeGypBuild();
  const resolve = ngb.resolve ?? ngb.path;
  if (!resolve) throw loadError('node-gyp-build cannot resolve paths');
  try {
    return resolve(packageRoot);
  } catch (e) {
    throw loadError(e instanceof Error ? e.message.split('\n')[0] : String(e));
  }
}

const PROBE = `
const b = require(process.argv[1]);
const info = b.buildInfo();
const cuda = b.cudaStatus();
process.stdout.write(JSON.stringify({ ok: true, info, cuda: { usable: cuda.usable, reason: cuda.reason } }));
`;

function checkInChild(file: string): void {
  if (process.env.MIXT_SKIP_LOAD_CHECK === '1') return;
  let key: string;
  try {
    const st = fs.statSync(file);
    key = createHash('sha256').update(`${file}|${st.size}|${st.mtimeMs}|${process.versions.modules}|${process.version}`).digest('hex').slice(0, 24);
  } catch (e) {
    throw loadError(`${file}: ${(e as Error).message}`);
  }
  const cache = path.join(os.tmpdir(), `mixt-load-check-${key}.json`);
  if (fs.existsSync(cache)) return;
  const r = spawnSync(process.execPath, ['-e', PROBE, file], { encoding: 'utf8', timeout: 60000, env: { ...process.env, MIXT_SKIP_LOAD_CHECK: '1' } });
  if (r.status !== 0 || r.signal) {
    const how = r.signal ? `the test load was killed by ${r.signal}` : r.error ? r.error.message : `the test load exited with status ${r.status}`;
    const detail = (r.stderr || '').trim().split('\n').slice(-3).join(' | ');
    throw loadError(`${how}${detail ? `: ${detail}` : ''}`);
  }
  try {
    const tmp = `${cache}.${process.pid}`;
    fs.writeFileSync(tmp, r.stdout);
    fs.renameSync(tmp, cache);
  } catch {
    // an unwritable temp directory only costs a child process next time
  }
}

function load(): Binding {
  const file = binaryPath();
  checkInChild(file);
  let b: Binding;
  try {
    // eslint-disable-next-line @typescript-eslint/no-require-imports
    b = require(file) as Binding;
  } catch (e) {
    throw loadError(e instanceof Error ? e.message.split('\n')[0] : String(e));
  }
  b.setErrorClass(MixtError);
  // At exit nothing can read the results of queued work any more: drop it, so the process (or the
  // worker) ends when its script does instead of running kernels nobody will see.
  process.once('exit', () => b.shutdown());
  return b;
}

export function native(): Binding {
  if (!binding) binding = load();
  return binding;
}
