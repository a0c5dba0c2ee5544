// The README's JavaScript library example runs as written (Node 20, CommonJS, `require('mixt')`
// resolving to this package), and the test summary names why suites were skipped.
import { spawnSync } from 'child_process';
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';

const root = path.resolve(__dirname, '..');

test("the README's JavaScript example runs as written and frees its tensors", () => {
  const readme = fs.readFileSync(path.join(root, 'README.md'), 'utf8');
  const library = readme.slice(readme.indexOf('## Library'));
  const code = /```js\n([\s\S]*?)```/.exec(library)![1];
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'mixt-readme-'));
  fs.mkdirSync(path.join(dir, 'node_modules'));
  fs.symlinkSync(root, path.join(dir, 'node_modules', 'mixt'), 'dir');
  // the example, then a check that it disposed what it made
  fs.writeFileSync(path.join(dir, 'example.js'), code.replace(/main\(\);\s*$/, "main().then(() => console.log('live tensors', require('mixt').memory().cpu.tensors));\n"));
  const r = spawnSync(process.execPath, ['example.js'], { cwd: dir, encoding: 'utf8', timeout: 60000, env: { ...process.env, MIXT_DEVICE: 'cpu' } });
  expect(r.stderr).toBe('');
  expect(r.status).toBe(0);
  expect(r.stdout).toMatch(/Float32Array\(4\)/);
  expect(r.stdout).toMatch(/live tensors 0\n$/);
  expect(readme).toMatch(/```ts\n[\s\S]*using a = mixt\.tensor/);
});

test('the test summary prints why suites were skipped (the CUDA reason)', () => {
  const Reporter = require('./summary-reporter.js');
  const written: string[] = [];
  const write = process.stdout.write;
  process.stdout.write = ((s: string) => written.push(s) > 0) as unknown as typeof process.stdout.write;
  try {
    new Reporter().onRunComplete(null, {
      numPassedTests: 1, numFailedTests: 0, numRuntimeErrorTestSuites: 0, numPendingTests: 2, numTodoTests: 0,
      testResults: [{ testResults: [
        { status: 'pending', ancestorTitles: ['CUDA ops [skipped: no NVIDIA driver]'] },
        { status: 'pending', ancestorTitles: ['CUDA ops [skipped: no NVIDIA driver]'] },
        { status: 'passed', ancestorTitles: ['cpu'] },
      ] }],
    });
  } finally {
    process.stdout.write = write;
  }
  expect(written.join('')).toBe('\nskipped: CUDA ops [skipped: no NVIDIA driver]\n1 passed, 0 failed, 2 skipped\n');
});

test('a generated sample.png is not part of the repository', () => {
  expect(fs.readFileSync(path.join(root, '.gitignore'), 'utf8').split('\n')).toContain('sample.png');
  const tracked = spawnSync('git', ['ls-files', 'sample.png'], { cwd: root, encoding: 'utf8' });
  if (tracked.status === 0) expect(tracked.stdout.trim()).toBe('');
});
