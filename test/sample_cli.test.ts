// `mixt sample` and `mixt eval` as a user meets them: grammar errors, help, a missing checkpoint,
// scoring with progress, the grid PNG, eval's split and baseline.
import { execFile } from 'child_process';
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { PNG } from 'pngjs';
import { Device } from '../lib/core/device';
import { presetConfig } from '../lib/model/config';
import { Model } from '../lib/model/model';
import { shapesCorpus } from '../lib/train/data/dataset';
import { COLORS, GRID, SHAPES, SHAPES_VOCAB } from '../lib/train/data/shapes';
import { TRAIN_DEFAULTS, Trainer } from '../lib/train/trainer';

const root = path.join(__dirname, '..');
const plain = (s: string) => s.replace(/\x1b\[[0-9;]*m/g, ''); // tables may be coloured
const mixt = (args: string[]) =>
  new Promise<{ code: number; stdout: string; stderr: string }>((resolve) => {
    execFile(process.execPath, [path.join(root, 'bin', 'mixt.js'), ...args], { cwd: root, env: { ...process.env, NO_COLOR: '1' } }, (err, stdout, stderr) =>
      resolve({ code: err ? (typeof err.code === 'number' ? err.code : 1) : 0, stdout: plain(stdout), stderr: plain(stderr) }),
    );
  });

const vocab = { size: SHAPES_VOCAB.size, modalities: SHAPES_VOCAB.modalities.map((m) => ({ name: m.name, range: m.range })) };
let checkpoint = '';

beforeAll(async () => {
  // a few steps of a small model of the default kind: enough for the CLI, not for good pictures
  const cfg = presetConfig('tiny', vocab, 'mot', { dModel: 16, layers: 1, heads: 2, kvHeads: 1, ffnHidden: 24, imagePositions: { modality: 'image', size: GRID * GRID } });
  const model = new Model(cfg, { device: Device.cpu, seed: 1 });
  const tr = new Trainer(model, shapesCorpus({ docs: 50 }), { ...TRAIN_DEFAULTS, steps: 2, batch: 1, seqLen: 96 });
  while (tr.step < 2) await tr.trainStep();
  checkpoint = fs.mkdtempSync(path.join(os.tmpdir(), 'mixt-sample-'));
  await tr.save(checkpoint);
});

describe('mixt sample', () => {
  test('an empty prompt and prompts outside the grammar are errors that name the grammar and the vocabulary', async () => {
    for (const prompt of ['', 'a purple circle', 'a big red circle']) {
      const r = await mixt(['sample', '--checkpoint', checkpoint, '--prompt', prompt, '--png', path.join(checkpoint, 'x.png')]);
      expect(r.code).toBe(1);
      expect(r.stderr).toMatch(/captions follow "a <size> <colour> <shape> at the <place> on <background>"/);
      expect(r.stderr).toMatch(/<shape>: square \| ring \| circle/);
      expect(fs.existsSync(path.join(checkpoint, 'x.png'))).toBe(false);
    }
  });

  test('--help shows the grammar, every slot\'s words and the default prompt', async () => {
    const r = await mixt(['sample', '--help']);
    expect(r.code).toBe(0);
    expect(r.stdout).toContain('a <size> <colour> <shape> at the <place> on <background>');
    expect(r.stdout).toMatch(/<place>: top left \| top right \| bottom left \| bottom right \| center/);
    expect(r.stdout).toContain('Default prompt: "a big red circle at the center on black"');
    expect(r.stdout).toContain('--grid');
  });

  test('without a checkpoint, sample and eval say to train one first', async () => {
    const missing = path.join(os.tmpdir(), 'mixt-no-such-run');
    for (const cmd of ['sample', 'eval']) {
      const r = await mixt([cmd, '--checkpoint', missing]);
      expect(r.code).toBe(1);
      expect(r.stderr).toContain(`no checkpoint at ${missing}: train one first with \`npx mixt train\``);
    }
  });

  test('a prompt draws a PNG and says what the picture shows, attribute by attribute', async () => {
    const png = path.join(checkpoint, 'one.png');
    const r = await mixt(['sample', '--checkpoint', checkpoint, '--png', png, '--prompt', 'a small blue ring at the top left on gray']);
    expect(r.code).toBe(0);
    expect(r.stdout).toMatch(/wrote .*one\.png \((exactly the asked picture|it looks most like "a (small|big) \w+ \w+ at the [a-z ]+ on (black|gray)"[^)]*)\)/);
    expect(r.stdout).not.toMatch(/cells agree/);
    expect(PNG.sync.read(fs.readFileSync(png)).width).toBe(GRID * 16);
  });

  test('--score judges seen and held-out captions per attribute beside chance, with progress on stderr', async () => {
    const r = await mixt(['sample', '--checkpoint', checkpoint, '--score', '3']);
    expect(r.code).toBe(0);
    for (const row of ['shape', 'colour', 'size', 'place', 'background', 'picture, cell for cell']) expect(r.stdout).toContain(row);
    expect(r.stdout).toMatch(/seen in training \(3\).*held-out pairs \(3\).*chance/);
    expect(r.stdout).toMatch(/12\.5%/); // the chance of a shape
    expect(r.stderr).toMatch(/score .*6\/6 pictures/);
    const j = await mixt(['sample', '--checkpoint', checkpoint, '--score', '2', '--json']);
    const line = JSON.parse(j.stdout.trim());
    expect(Object.keys(line.seen.rates).sort()).toEqual(['background', 'color', 'place', 'shape', 'size']);
    expect(line.heldOut.n).toBe(2);
    expect(j.stderr).not.toMatch(/score/);
  });

  test('--grid writes one PNG with a tile per shape/colour pair', async () => {
    const file = path.join(checkpoint, 'docs', 'grid.png');
    const r = await mixt(['sample', '--checkpoint', checkpoint, '--grid', file]);
    expect(r.code).toBe(0);
    expect(r.stdout).toMatch(/wrote .*grid\.png: rows square, ring.*held-out pairs framed; \d+ of 56 show every asked attribute/);
    const png = PNG.sync.read(fs.readFileSync(file));
    const pitch = GRID * 8 + 4;
    expect(png.width).toBe(COLORS.length * pitch + 4);
    expect(png.height).toBe(SHAPES.length * pitch + 4);
  });
});

describe('mixt eval', () => {
  test('names what its split holds out and prints the unigram baseline beside each loss', async () => {
    const r = await mixt(['eval', '--checkpoint', checkpoint, '--batches', '1', '--batch', '1', '--seq', '96']);
    expect(r.code).toBe(0);
    expect(r.stdout).toMatch(/held-out split of the embedded corpus: documents about the pictures of the \(shape, colour\) pairs red square, .*never seen in training/);
    expect(r.stdout).toMatch(/modality.*loss.*unigram baseline/);
    expect(r.stdout).toMatch(/text\W+\d+\.\d{3}\W+\d+\.\d{3}/);
    expect(r.stdout).toMatch(/unigram baseline: the loss of predicting each token from its frequency in the training split/);
  });
});
