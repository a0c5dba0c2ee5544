// The first run convinces: `mixt train`'s default model, trained for a fraction of its default
// steps (CI time), already draws what captions ask, judged attribute by attribute from the pixels.
// The full-length figures (the README's) come from `npx mixt train` then `npx mixt sample --score`.
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { drawPicture, loadModel } from '../lib/cli/sample';
import { CHANCE, scoreSplit } from '../lib/cli/score';
import { runTrain } from '../lib/cli/train';
import { unigramEntropy } from '../lib/train/data/dataset';
import { shapesCorpus } from '../lib/train/data/dataset';
import { evaluate } from '../lib/train/evaluate';

const STEPS = 600;

test(`the default model after ${STEPS} steps draws the asked colour, size, place and background; held-out tone loss is far below the unigram baseline`, async () => {
  const out = fs.mkdtempSync(path.join(os.tmpdir(), 'mixt-quality-'));
  await runTrain({ preset: 'tiny', seed: 1, steps: STEPS, out, quiet: true, device: 'cpu' });
  const model = await loadModel(out, 'cpu', true);
  const draw = (words: number[], seed: number) => drawPicture(model, words, 0.7, seed);
  const seen = await scoreSplit(draw, 24, false, 1);
  const held = await scoreSplit(draw, 24, true, 1);
  // held-out melodies are made of parts heard in training: their loss is far below the unigram baseline
  const heldOut = shapesCorpus({ docs: 400, seed: 2, split: 'eval' });
  const rep = await evaluate(model, heldOut, { batch: 4, seqLen: 256, batches: 4 });
  const baseline = unigramEntropy(heldOut, shapesCorpus({ docs: 4000, seed: 1 }));
  const tone = rep.modalities.findIndex((m) => m.name === 'tone');
  // at 600 of the default 1200 steps (measured: colour 79%, size 79%, place 58%, background 100%; shapes
  // come later, 17%; the README's table is the full run)
  expect(seen.rates.background).toBeGreaterThanOrEqual(0.9);
  expect(seen.rates.color).toBeGreaterThanOrEqual(0.65);
  expect(seen.rates.size).toBeGreaterThanOrEqual(0.65);
  expect(seen.rates.place).toBeGreaterThanOrEqual(2 * CHANCE.place);
  expect(held.rates.color).toBeGreaterThanOrEqual(0.65);
  expect(held.rates.place).toBeGreaterThanOrEqual(2 * CHANCE.place);
  expect(rep.modalities[tone].loss).toBeLessThan(0.5 * baseline[tone]);
}, 600000);
