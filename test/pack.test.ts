// The package works from its prebuilt binary alone: pack it, install the tarball into an empty
// project with --ignore-scripts and no compiler on PATH, require it and run ops on the CPU.
import { execFileSync } from 'child_process';
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';

const root = path.resolve(__dirname, '..');

function run(cmd: string, args: string[], cwd: string, env: NodeJS.ProcessEnv = process.env): string {
  return execFileSync(cmd, args, { cwd, env, encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'], timeout: 600000 });
}

describe('install from the packed tarball', () => {
  test('prebuild, pack, install with --ignore-scripts and no compiler, require, compute', () => {
    run(process.execPath, [path.join(root, 'scripts', 'prebuild.js')], root);
    const work = fs.mkdtempSync(path.join(os.tmpdir(), 'mixt-pack-'));
    const packed = JSON.parse(run('npm', ['pack', '--json', '--pack-destination', work], root));
    const tarball = path.join(work, packed[0].filename);
    const files: string[] = packed[0].files.map((f: { path: string }) => f.path);
    expect(files.some((f) => f.startsWith('prebuilds/') && f.endsWith('.node'))).toBe(true);
    expect(files).toContain('dist/index.js');
    expect(files.some((f) => f.startsWith('native/') || f.startsWith('test/'))).toBe(false);

    // A PATH with node and npm only: no cc, g++, cmake, nvcc, make.
    const bin = path.join(work, 'bin');
    fs.mkdirSync(bin);
    fs.symlinkSync(process.execPath, path.join(bin, 'node'));
    const npmCli = fs.realpathSync(execFileSync('which', ['npm'], { encoding: 'utf8' }).trim()); // npm-cli.js
    fs.writeFileSync(path.join(bin, 'npm'), `#!/bin/sh\nexec "${process.execPath}" "${npmCli}" "$@"\n`, { mode: 0o755 });
    const env = { ...process.env, PATH: bin, npm_config_nodedir: '', npm_config_build_from_source: '' };
    for (const tool of ['cc', 'gcc', 'g++', 'cmake', 'nvcc', 'make']) {
      expect(() => execFileSync('sh', ['-c', `command -v ${tool}`], { env })).toThrow();
    }
    const app = path.join(work, 'app');
    fs.mkdirSync(app);
    fs.writeFileSync(path.join(app, 'package.json'), JSON.stringify({ name: 'app', version: '1.0.0', private: true }));
    run(path.join(bin, 'npm'), ['install', tarball, '--ignore-scripts', '--no-audit', '--no-fund', '--prefer-offline'], app, env);
    expect(fs.existsSync(path.join(app, 'node_modules', 'mixt', 'build'))).toBe(false);
    const out = run(
      path.join(bin, 'node'),
      ['-e', `const m = require('mixt');
        const a = m.tensor(new Float32Array([1, 2, 3, 4]), [2, 2]);
        m.matmul(a, a).toArray().then((v) => console.log(JSON.stringify({ v: Array.from(v), dev: String(m.chooseDevice('auto').device) })));`],
      app,
      env,
    );
    const r = JSON.parse(out.trim().split('\n').pop()!);
    expect(r.v).toEqual([7, 10, 15, 22]);
    fs.rmSync(work, { recursive: true, force: true });
  });
});
