// `mixt sample`: generates from a checkpoint. With the shapes corpus, a caption prompt makes a
// picture (written as a PNG); --score N draws N captions and reports how often the picture shows
// the asked shape (chance: 1 in 8) and colour.
import { Command } from 'commander';
import * as fs from 'fs';
import * as path from 'path';
import { Model } from '../model/model';
import { generate } from '../model/generate';
import { loadCheckpoint, restoreCheckpoint } from '../train/checkpoint';
import { hostRandom } from '../core/random';
import {
  COLORS, GRID, IMAGE_BASE, PALETTE, PALETTE_RGB, Picture, SHAPES_VOCAB, TOK, allPictures, caption, classifyShape, isHeldOut, tokenName, tokenizeCaption,
} from '../train/data/shapes';
import { fmt, intOption, numberOption, pickDevice } from './common';
import { gridPng, rgbPng } from './png';
import { sampleImage } from '../model/diffusion_sample';
import { PATCHES, PATCH_TOKEN, latentsToRgb, rgbToPalette } from '../train/data/transfusion';
import { modelCodec, runCodecSample } from './prompt';

export interface SampleCliOptions {
  steps?: number;
  guidance?: number;
  checkpoint: string;
  prompt?: string;
  image?: string;
  maxTokens?: number;
  png?: string;
  score?: number;
  heldOut?: boolean;
  temperature: number;
  seed: number;
  device?: string;
  json?: boolean;
}

export function loadModel(checkpoint: string, device?: string, quiet = false): Model {
  const ck = loadCheckpoint(checkpoint);
  const choice = pickDevice(device, quiet);
  const model = new Model(ck.config, { device: choice.device });
  restoreCheckpoint(ck, model);
  return model;
}

function usesShapesVocab(model: Model): boolean {
  return model.cfg.vocabSize === SHAPES_VOCAB.size && model.cfg.modalities.map((m) => m.name).join() === 'text,image,tone';
}

// caption -> picture (palette indices); for a Transfusion model, also the continuous RGB pixels
export async function drawPicture(model: Model, words: number[], temperature: number, seed: number, o: { steps?: number; guidance?: number } = {}): Promise<Uint8Array> {
  return (await drawPictureRgb(model, words, temperature, seed, o)).palette;
}

export async function drawPictureRgb(model: Model, words: number[], temperature: number, seed: number, o: { steps?: number; guidance?: number } = {}): Promise<{ palette: Uint8Array; rgb: Uint8Array | null }> {
  if (model.cfg.transfusion) {
    const lat = await sampleImage(model, words, { steps: o.steps ?? 50, guidance: o.guidance ?? 3, seed, patchToken: PATCH_TOKEN, patches: PATCHES, beginImage: TOK.boi, beginSequence: TOK.bos });
    const rgb = latentsToRgb(lat);
    return { palette: rgbToPalette(rgb), rgb };
  }
  return { palette: await drawTokens(model, words, temperature, seed), rgb: null };
}

async function drawTokens(model: Model, words: number[], temperature: number, seed: number): Promise<Uint8Array> {
  const range: [number, number] = [IMAGE_BASE, IMAGE_BASE + PALETTE.length];
  const toks = await generate(model, [TOK.bos, ...words, TOK.boi], GRID * GRID, { temperature, range, seed });
  return Uint8Array.from(toks, (t) => t - IMAGE_BASE);
}

export async function scoreShapes(model: Model, n: number, temperature: number, seed: number, heldOut: boolean, o: { steps?: number; guidance?: number } = {}): Promise<{ shape: number; color: number; n: number }> {
  const pics = allPictures().filter((p) => isHeldOut(p) === heldOut);
  const rand = hostRandom(seed);
  let shapeOk = 0, colorOk = 0;
  for (let i = 0; i < n; i++) {
    const p: Picture = pics[Math.floor(rand() * pics.length)];
    const img = await drawPicture(model, tokenizeCaption(caption(p).join(' ')), temperature, seed + i, o);
    if (classifyShape(img).shape === p.shape) shapeOk++;
    const fg = Array.from(img).filter((c) => c >= 2);
    const votes = COLORS.map((_, ci) => fg.filter((c) => c === ci + 2).length);
    if (fg.length && COLORS[votes.indexOf(Math.max(...votes))] === p.color) colorOk++;
  }
  return { shape: shapeOk / n, color: colorOk / n, n };
}

export async function runSample(o: SampleCliOptions): Promise<void> {
  const model = loadModel(o.checkpoint, o.device, o.json);
  const codec = modelCodec(model);
  if (codec) return runCodecSample(model, codec, o); // a model of user data: its own tokenizer and pictures
  if (o.image) throw new RangeError('--image: this checkpoint carries no image codec (it was not trained on packed pictures)');
  if (!usesShapesVocab(model)) throw new RangeError('mixt sample: this checkpoint does not use the shapes corpus vocabulary; only that corpus has a picture decoder');
  if (o.score) {
    const r = await scoreShapes(model, o.score, o.temperature, o.seed, !!o.heldOut, o);
    const line = { type: 'score', pictures: r.n, heldOut: !!o.heldOut, shapeMatch: r.shape, colorMatch: r.color, chanceShape: 1 / 8, chanceColor: 1 / COLORS.length };
    if (o.json) console.log(JSON.stringify(line));
    else console.log(`${r.n} captions${o.heldOut ? ' (held-out shape/colour pairs)' : ''}: the picture shows the asked shape ${fmt(100 * r.shape, 1)}% of the time (chance 12.5%), the asked colour ${fmt(100 * r.color, 1)}% (chance ${fmt(100 / COLORS.length, 1)}%)`);
    return;
  }
  const prompt = o.prompt ?? 'a big red circle at the center on black';
  const words = tokenizeCaption(prompt);
  const drawn = await drawPictureRgb(model, words, o.temperature, o.seed, o);
  const img = drawn.palette;
  const file = o.png ?? 'sample.png';
  fs.mkdirSync(path.dirname(path.resolve(file)), { recursive: true });
  fs.writeFileSync(file, drawn.rgb ? rgbPng(drawn.rgb, GRID, GRID) : gridPng(img, GRID, GRID, PALETTE.map((c) => PALETTE_RGB[c])));
  const seen = classifyShape(img);
  if (o.json) console.log(JSON.stringify({ type: 'sample', prompt, png: file, shape: seen.shape, tokens: Array.from(img, (c) => tokenName(IMAGE_BASE + c)) }));
  else {
    const rows = [];
    for (let r = 0; r < GRID; r++) rows.push(Array.from(img.slice(r * GRID, r * GRID + GRID), (c) => '.:RGBYMCW'[c]).join(''));
    console.log(`"${prompt}" ->\n${rows.join('\n')}\nwrote ${file} (it looks like a ${seen.shape}, ${fmt(100 * seen.agreement, 0)}% of cells agree)`);
  }
}

export function sampleCommand(): Command {
  return new Command('sample')
    .description('generate from a checkpoint: a caption -> a picture, written as a PNG')
    .option('--checkpoint <dir>', 'checkpoint or run directory', 'runs/tiny')
    .option('--prompt <caption>', "a caption, e.g. 'a big red circle at the center on black'")
    .option('--png <file>', 'where to write the picture', 'sample.png')
    .option('--image <file>', 'a picture (PNG/JPEG) to caption (models trained on packed pictures)')
    .option('--max-tokens <n>', 'text: at most n new tokens', intOption('--max-tokens'), 64)
    .option('--score <n>', 'draw n captions and report how often the picture shows the asked shape', intOption('--score'))
    .option('--held-out', 'with --score: use the held-out (shape, colour) pairs')
    .option('--temperature <t>', 'sampling temperature (0: greedy)', numberOption('--temperature'), 0.7)
    .option('--seed <n>', 'sampling seed', intOption('--seed', 0), 1)
    .option('--steps <n>', 'Transfusion models: denoising steps (DDIM)', intOption('--steps'), 50)
    .option('--guidance <w>', 'Transfusion models: classifier-free guidance weight (1: none)', numberOption('--guidance'), 3)
    .option('--device <device>', "'auto' | 'cpu' | 'cuda' | 'cuda:N'")
    .option('--json', 'JSON output')
    .action(async (o: SampleCliOptions) => runSample(o));
}
