// `mixt sample`: generates from a checkpoint. With the shapes corpus, a caption prompt makes a
// picture (written as a PNG); --grid draws a mosaic of many captions; --score N judges the samples
// of N captions per split, attribute by attribute (lib/cli/score.ts).
import { Command } from 'commander';
import * as fs from 'fs';
import * as path from 'path';
import { Model } from '../model/model';
import { generate } from '../model/generate';
import { loadCheckpointAsync, restoreCheckpoint } from '../train/checkpoint';
import { MixtError } from '../core/errors';
import { hostRandom } from '../core/random';
import {
  BACKGROUNDS, CAPTION_GRAMMAR, CAPTION_SLOTS, COLORS, DEFAULT_CAPTION, GRID, HELD_OUT_PAIRS, IMAGE_BASE, PALETTE, PALETTE_RGB, PLACES, Picture, SHAPES, SHAPES_VOCAB, SIZES, TOK,
  caption, isHeldOut, nearestPicture, parseCaption, tokenName, tokenizeCaption,
} from '../train/data/shapes';
import { intOption, numberOption, pickDevice } from './common';
import { gridPng, mosaicPng, rgbPng } from './png';
import { ATTRIBUTES, CHANCE, judge, scoreModel, scoreTable } from './score';
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
  grid?: string;
  temperature: number;
  seed: number;
  device?: string;
  json?: boolean;
}

// Reads, hashes and checks the checkpoint off the event loop (loadCheckpointAsync).
export async function loadModel(checkpoint: string, device?: string, quiet = false): Promise<Model> {
  if (!fs.existsSync(checkpoint)) {
    throw new MixtError(`no checkpoint at ${checkpoint}: train one first with \`npx mixt train\` (or give --checkpoint <run directory>)`, 'ERR_CHECKPOINT');
  }
  const ck = await loadCheckpointAsync(checkpoint);
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

// The picture of a sample as RGB pixels (a Transfusion model's own, or the palette's colours).
function samplePixels(drawn: { palette: Uint8Array; rgb: Uint8Array | null }): Uint8Array {
  if (drawn.rgb) return drawn.rgb;
  const rgb = new Uint8Array(drawn.palette.length * 3);
  drawn.palette.forEach((c, i) => rgb.set(PALETTE_RGB[PALETTE[c]], 3 * i));
  return rgb;
}

// A mosaic of samples: a row per shape, a column per colour (every shape/colour pair once, held-out
// pairs framed in white), size, place and background drawn at random per tile.
async function drawGrid(model: Model, o: SampleCliOptions): Promise<{ png: Buffer; tiles: { asked: Picture; shown: Picture }[] }> {
  const rand = hostRandom(o.seed * 7 + 3);
  const pick = <T>(xs: readonly T[]): T => xs[Math.floor(rand() * xs.length)];
  const tiles: { asked: Picture; shown: Picture; rgb: Uint8Array; framed: boolean }[] = [];
  for (const shape of SHAPES)
    for (const color of COLORS) {
      const asked: Picture = { shape, color, size: pick(SIZES), place: pick(PLACES), background: pick(BACKGROUNDS) };
      const drawn = await drawPictureRgb(model, tokenizeCaption(caption(asked).join(' ')), o.temperature, o.seed + tiles.length, o);
      tiles.push({ asked, shown: nearestPicture(drawn.palette).picture, rgb: samplePixels(drawn), framed: isHeldOut(asked) });
    }
  return { png: mosaicPng(tiles, COLORS.length, GRID), tiles };
}

export async function runSample(o: SampleCliOptions): Promise<void> {
  const model = await loadModel(o.checkpoint, o.device, o.json);
  const codec = modelCodec(model);
  if (codec) return runCodecSample(model, codec, o); // a model of user data: its own tokenizer and pictures
  if (o.image) throw new RangeError('--image: this checkpoint carries no image codec (it was not trained on packed pictures)');
  if (!usesShapesVocab(model)) throw new RangeError('mixt sample: this checkpoint does not use the shapes corpus vocabulary; only that corpus has a picture decoder');
  if (o.score) {
    const draw = (words: number[], seed: number) => drawPicture(model, words, o.temperature, seed, o);
    const r = await scoreModel(draw, { n: o.score, seed: o.seed, heldOutOnly: o.heldOut, quiet: o.json });
    if (o.json) console.log(JSON.stringify({ type: 'score', ...r, chance: CHANCE }));
    else console.log(`${scoreTable(r)}\nheld-out pairs: the ${HELD_OUT_PAIRS} pictures, never seen in training`);
    return;
  }
  if (o.grid) {
    const g = await drawGrid(model, o);
    writeFile(o.grid, g.png);
    const matched = g.tiles.filter((t) => caption(t.shown).join(' ') === caption(t.asked).join(' ')).length;
    if (o.json) console.log(JSON.stringify({ type: 'grid', png: o.grid, tiles: g.tiles.map((t) => ({ asked: caption(t.asked).join(' '), shows: caption(t.shown).join(' ') })) }));
    else console.log(`wrote ${o.grid}: rows ${SHAPES.join(', ')}; columns ${COLORS.join(', ')}; held-out pairs framed; ${matched} of ${g.tiles.length} show every asked attribute`);
    return;
  }
  const prompt = o.prompt ?? DEFAULT_CAPTION;
  const asked = parseCaption(prompt);
  const drawn = await drawPictureRgb(model, tokenizeCaption(prompt), o.temperature, o.seed, o);
  const img = drawn.palette;
  const file = o.png ?? 'sample.png';
  writeFile(file, drawn.rgb ? rgbPng(drawn.rgb, GRID, GRID) : gridPng(img, GRID, GRID, PALETTE.map((c) => PALETTE_RGB[c])));
  const j = judge(asked, img);
  const shows = caption(j.shown).join(' ');
  const wrong = ATTRIBUTES.filter((a) => !j.match[a]);
  if (o.json) console.log(JSON.stringify({ type: 'sample', prompt, png: file, shows, matches: j.match, exact: j.exact, tokens: Array.from(img, (c) => tokenName(IMAGE_BASE + c)) }));
  else {
    const rows = [];
    for (let r = 0; r < GRID; r++) rows.push(Array.from(img.slice(r * GRID, r * GRID + GRID), (c) => '.:RGBYMCW'[c]).join(''));
    const verdict = j.exact ? 'exactly the asked picture' : wrong.length ? `it looks most like "${shows}": not the asked ${wrong.join(', ')}` : `it looks most like "${shows}", as asked, with stray cells`;
    console.log(`"${prompt}" ->\n${rows.join('\n')}\nwrote ${file} (${verdict})`);
  }
}

function writeFile(file: string, data: Buffer): void {
  fs.mkdirSync(path.dirname(path.resolve(file)), { recursive: true });
  fs.writeFileSync(file, data);
}

const GRAMMAR_HELP = `
Prompts follow the grammar of the corpus's captions:
  ${CAPTION_GRAMMAR}
${Object.entries(CAPTION_SLOTS).map(([slot, words]) => `  <${slot}>: ${words.join(' | ')}`).join('\n')}
Default prompt: "${DEFAULT_CAPTION}". Held out of training: the ${HELD_OUT_PAIRS} pictures.`;

export function sampleCommand(): Command {
  return new Command('sample')
    .description('generate from a checkpoint: a caption -> a picture, written as a PNG')
    .option('--checkpoint <dir>', 'checkpoint or run directory', 'runs/tiny')
    .option('--prompt <caption>', 'a caption in the grammar below', DEFAULT_CAPTION)
    .option('--png <file>', 'where to write the picture', 'sample.png')
    .option('--image <file>', 'a picture (PNG/JPEG) to caption (models trained on packed pictures)')
    .option('--max-tokens <n>', 'text: at most n new tokens', intOption('--max-tokens'), 64)
    .option('--grid <file>', 'draw a picture for every shape/colour pair and write them as one PNG')
    .option('--score <n>', 'draw n captions seen in training and n held-out ones; report how often the picture shows each asked attribute', intOption('--score'))
    .option('--held-out', 'with --score: only the held-out (shape, colour) pairs')
    .option('--temperature <t>', 'sampling temperature (0: greedy)', numberOption('--temperature'), 0.7)
    .option('--seed <n>', 'sampling seed', intOption('--seed', 0), 1)
    .option('--steps <n>', 'Transfusion models: denoising steps (DDIM)', intOption('--steps'), 50)
    .option('--guidance <w>', 'Transfusion models: classifier-free guidance weight (1: none)', numberOption('--guidance'), 3)
    .option('--device <device>', "'auto' | 'cpu' | 'cuda' | 'cuda:N'")
    .option('--json', 'JSON output')
    .addHelpText('after', GRAMMAR_HELP)
    .action(async (o: SampleCliOptions) => runSample(o));
}
