// The embedded corpus in its continuous form (the Transfusion setting): each picture is 16 patches
// of 2x2 pixels x RGB (12 values in [-1, 1]) instead of 64 colour tokens; captions and melodies stay
// discrete. Caption -> picture documents drop their caption at a given rate, so the model also
// learns the unconditional picture distribution (classifier-free guidance).
import { hostRandom } from '../../core/random';
import { TokenDataset, drawKind } from './dataset';
import {
  DocKind, GRID, PALETTE, PALETTE_RGB, Picture, SHAPES_VOCAB, TOK, IMAGE_BASE, TONE_BASE, allPictures, caption, isHeldOut, melody, render,
} from './shapes';
import { latentsToImage, normalisePatches } from './image_codec';
import { modalityOfToken } from './vocab';

export const PATCH = 2;
export const PATCH_DIM = PATCH * PATCH * 3;
export const PATCHES = (GRID / PATCH) ** 2;
export const PATCH_TOKEN = IMAGE_BASE; // the placeholder id at patch positions (its embedding is learned)

const wordId = (w: string) => SHAPES_VOCAB.tokens!.indexOf(w);

// Picture -> [PATCHES * PATCH_DIM] latents: patches row-major, pixels row-major inside, RGB in [-1, 1].
export function pictureLatents(p: Picture): Float32Array {
  return gridLatents(render(p));
}

export function gridLatents(grid: Uint8Array): Float32Array {
  const rgb = new Uint8Array(GRID * GRID * 3);
  grid.forEach((c, i) => rgb.set(PALETTE_RGB[PALETTE[c]], 3 * i));
  return normalisePatches(rgb, GRID, PATCH);
}

// Latents -> RGB pixels [GRID * GRID * 3] (clamped), and -> the nearest palette index per pixel.
export function latentsToRgb(lat: ArrayLike<number>): Uint8Array {
  return latentsToImage(lat, GRID, PATCH);
}

export function rgbToPalette(rgb: Uint8Array): Uint8Array {
  const out = new Uint8Array(GRID * GRID);
  for (let i = 0; i < out.length; i++) {
    let best = 0, bestD = Infinity;
    PALETTE.forEach((name, k) => {
      const [r, g, b] = PALETTE_RGB[name];
      const d = (rgb[3 * i] - r) ** 2 + (rgb[3 * i + 1] - g) ** 2 + (rgb[3 * i + 2] - b) ** 2;
      if (d < bestD) {
        bestD = d;
        best = k;
      }
    });
    out[i] = best;
  }
  return out;
}

export interface TransfusionOptions {
  docs?: number;
  seed?: number;
  split?: 'train' | 'eval';
  captionDropout?: number;
  pictures?: Picture[]; // default: the split's pictures
  kinds?: [DocKind, number][]; // document kinds and their weights (default TRANSFUSION_KINDS)
}

// Pictures are the point of this setting: most documents draw one from its caption. (At 55% of
// documents, and 25% picture -> caption, whose pictures are learnt without a caption, the tiny
// model's samples had the asked shape 66% of the time; at 75% and 10%, 97 to 100%.)
export const TRANSFUSION_KINDS: [DocKind, number][] = [
  ['caption->image', 0.75],
  ['image->caption', 0.1],
  ['caption->melody', 0.075],
  ['melody->caption', 0.075],
];

// Documents of the given kinds; caption -> picture documents drop their caption at `captionDropout`.
export function transfusionCorpus(opts: TransfusionOptions = {}): TokenDataset {
  const docsN = opts.docs ?? 20000, drop = opts.captionDropout ?? 0.1;
  const rand = hostRandom((opts.seed ?? 1) * 6151 + (opts.split === 'eval' ? 1 : 0));
  const pictures = opts.pictures ?? allPictures().filter((p) => isHeldOut(p) === (opts.split === 'eval'));
  const tokens: number[] = [], patchIndex: number[] = [], offsets = [0];
  const patchRows: Float32Array[] = [];
  const push = (t: number, patch = -1) => {
    tokens.push(t);
    patchIndex.push(patch);
  };
  for (let d = 0; d < docsN; d++) {
    const p = pictures[Math.floor(rand() * pictures.length)];
    const kind = drawKind(opts.kinds ?? TRANSFUSION_KINDS, rand());
    const words = caption(p).map(wordId);
    const image = () => {
      push(TOK.boi);
      const lat = pictureLatents(p);
      for (let k = 0; k < PATCHES; k++) {
        push(PATCH_TOKEN, patchRows.length);
        patchRows.push(lat.subarray(k * PATCH_DIM, (k + 1) * PATCH_DIM));
      }
      push(TOK.eoi);
    };
    const tones = () => {
      push(TOK.bot);
      for (const n of melody(p)) push(TONE_BASE + n);
      push(TOK.eot);
    };
    push(TOK.bos);
    if (kind === 'caption->image') {
      if (rand() >= drop) words.forEach((w) => push(w));
      image();
    } else if (kind === 'image->caption') {
      image();
      words.forEach((w) => push(w));
    } else if (kind === 'caption->melody') {
      words.forEach((w) => push(w));
      tones();
    } else {
      tones();
      words.forEach((w) => push(w));
    }
    push(TOK.eos);
    offsets.push(tokens.length);
  }
  const patches = new Float32Array(patchRows.length * PATCH_DIM);
  patchRows.forEach((r, i) => patches.set(r, i * PATCH_DIM));
  const modOf = modalityOfToken(SHAPES_VOCAB);
  const toks = Int32Array.from(tokens);
  return {
    vocab: SHAPES_VOCAB,
    tokens: toks,
    modality: Uint8Array.from(toks, (t) => modOf[t]),
    docOffsets: Float64Array.from(offsets),
    patchIndex: Int32Array.from(patchIndex),
    patches,
    patchDim: PATCH_DIM,
  };
}
