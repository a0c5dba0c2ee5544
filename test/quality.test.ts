// The first run convinces: `mixt train`'s default model, trained for a fraction of its default
// steps (CI time), already draws what captions ask, judged attribute by attribute from the pixels;
// so does `mixt train --objective transfusion`'s. The full-length figures (the README's) come from
// `npx mixt train` then `npx mixt sample --score`.
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

const TRANSFUSION_STEPS = 600;

test(`the default Transfusion model after ${TRANSFUSION_STEPS} steps draws the asked shape, colour, size, place and background`, async () => {
  const out = fs.mkdtempSync(path.join(os.tmpdir(), 'mixt-quality-tf-'));
  await runTrain({ preset: 'tiny', objective: 'transfusion', seed: 1, steps: TRANSFUSION_STEPS, out, quiet: true, device: 'cpu' });
  const model = await loadModel(out, 'cpu', true);
  const draw = (words: number[], seed: number) => drawPicture(model, words, 0.7, seed, { steps: 20 });
  const seen = await scoreSplit(draw, 16, false, 1);
  const held = await scoreSplit(draw, 16, true, 1);
  // at 600 of the default 1200 steps, seen / held-out (measured): shape 63 / 81%, colour 94 / 100%, size
  // 94 / 100%, place 94 / 88%, background 100%. The former defaults (v-prediction, uniform timesteps, 55%
  // caption -> picture documents) gave shape 31 / 31% and place 31 / 44% here.
  for (const s of [seen, held]) {
    expect(s.rates.shape).toBeGreaterThanOrEqual(0.5);
    expect(s.rates.color).toBeGreaterThanOrEqual(0.85);
    expect(s.rates.size).toBeGreaterThanOrEqual(0.8);
    expect(s.rates.place).toBeGreaterThanOrEqual(0.75);
    expect(s.rates.background).toBeGreaterThanOrEqual(0.9);
  }
}, 600000);
