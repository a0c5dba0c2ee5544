// The embedded corpus: deterministic, generated. Pictures of one coloured shape on a background, as
// 8x8 grids of colour tokens; captions that describe them in words; and a third modality, a melody
// of tone tokens that the shape, colour and size determine. Documents go both ways (caption ->
// picture, picture -> caption, caption -> melody, melody -> caption), so predicting one modality
// needs attention across modalities.
import { VocabSpec } from './vocab';

export const GRID = 8;
export const SHAPES = ['square', 'ring', 'circle', 'triangle', 'cross', 'stripes', 'bar', 'pillar'] as const;
export const COLORS = ['red', 'green', 'blue', 'yellow', 'magenta', 'cyan', 'white'] as const;
export const BACKGROUNDS = ['black', 'gray'] as const;
export const SIZES = ['small', 'big'] as const;
export const PLACES = ['top left', 'top right', 'bottom left', 'bottom right', 'center'] as const;
// Palette index of every image token: backgrounds first, then shape colours.
export const PALETTE = [...BACKGROUNDS, ...COLORS] as const;
export const PALETTE_RGB: Record<(typeof PALETTE)[number], [number, number, number]> = {
  black: [0, 0, 0], gray: [110, 110, 110], red: [230, 40, 40], green: [40, 200, 60], blue: [50, 90, 240],
  yellow: [240, 220, 40], magenta: [220, 50, 220], cyan: [40, 220, 230], white: [250, 250, 250],
};

export type Shape = (typeof SHAPES)[number];
export interface Picture {
  shape: Shape;
  color: (typeof COLORS)[number];
  background: (typeof BACKGROUNDS)[number];
  size: (typeof SIZES)[number];
  place: (typeof PLACES)[number];
}

const SPECIALS = ['<pad>', '<bos>', '<eos>', '<boi>', '<eoi>', '<bot>', '<eot>'] as const;
const WORDS = [
  'a', 'the', 'at', 'on', 'of', 'small', 'big', ...COLORS, ...SHAPES, 'top', 'bottom', 'left', 'right', 'center', ...BACKGROUNDS,
  'picture', 'melody', 'shows', 'plays',
].filter((w, i, all) => all.indexOf(w) === i);
export const TONES = 16; // pitches 0..15, plus a rest token

const textTokens = [...SPECIALS, ...WORDS];
const imageTokens = PALETTE.map((c) => `<img:${c}>`);
const toneTokens = [...Array.from({ length: TONES }, (_, i) => `<tone:${i}>`), '<tone:rest>'];

export const SHAPES_VOCAB: VocabSpec = {
  size: textTokens.length + imageTokens.length + toneTokens.length,
  modalities: [
    { name: 'text', range: [0, textTokens.length] },
    { name: 'image', range: [textTokens.length, textTokens.length + imageTokens.length] },
    { name: 'tone', range: [textTokens.length + imageTokens.length, textTokens.length + imageTokens.length + toneTokens.length] },
  ],
  tokens: [...textTokens, ...imageTokens, ...toneTokens],
};

const id = (name: string): number => {
  const i = SHAPES_VOCAB.tokens!.indexOf(name);
  if (i < 0) throw new Error(`shapes corpus: unknown token ${name}`);
  return i;
};
export const TOK = { pad: id('<pad>'), bos: id('<bos>'), eos: id('<eos>'), boi: id('<boi>'), eoi: id('<eoi>'), bot: id('<bot>'), eot: id('<eot>') };
export const IMAGE_BASE = SHAPES_VOCAB.modalities[1].range[0];
export const TONE_BASE = SHAPES_VOCAB.modalities[2].range[0];

// Is cell (r, c) of an s x s box part of the shape?
function inShape(shape: Shape, s: number, r: number, c: number): boolean {
  const m = (s - 1) / 2;
  const dr = Math.abs(r - m), dc = Math.abs(c - m);
  switch (shape) {
    case 'square': return true;
    case 'ring': return r === 0 || c === 0 || r === s - 1 || c === s - 1;
    case 'circle': return dr * dr + dc * dc <= m * m + 0.6;
    case 'triangle': return c <= r; // right triangle, lower left
    case 'cross': return r === c || r + c === s - 1; // an X
    case 'stripes': return r % 2 === 0;
    case 'bar': return dr < 1;
    case 'pillar': return dc < 1;
  }
}

// The picture as GRID x GRID palette indices (row-major).
export function render(p: Picture): Uint8Array {
  const s = p.size === 'big' ? 6 : 4;
  const far = GRID - s;
  const [r0, c0] = {
    'top left': [0, 0], 'top right': [0, far], 'bottom left': [far, 0], 'bottom right': [far, far], center: [far / 2, far / 2],
  }[p.place];
  const bg = PALETTE.indexOf(p.background), fg = PALETTE.indexOf(p.color);
  const img = new Uint8Array(GRID * GRID).fill(bg);
  for (let r = 0; r < s; r++) for (let c = 0; c < s; c++) if (inShape(p.shape, s, r, c)) img[(r0 + r) * GRID + c0 + c] = fg;
  return img;
}

export function caption(p: Picture): string[] {
  return ['a', p.size, p.color, p.shape, 'at', 'the', ...p.place.split(' '), 'on', p.background];
}

// The melody: a four-note motif per shape, transposed by colour, repeated for big shapes, a rest between.
export function melody(p: Picture): number[] {
  const motif = [[0, 4, 7, 4], [0, 0, 7, 7], [0, 2, 4, 2], [0, 4, 9, 0], [7, 0, 7, 0], [0, 5, 9, 5], [0, 1, 2, 3], [3, 2, 1, 0]][SHAPES.indexOf(p.shape)];
  const shift = COLORS.indexOf(p.color);
  const notes = motif.map((n) => (n + shift) % TONES);
  return p.size === 'big' ? [...notes, TONES, ...notes] : notes;
}

export type DocKind = 'caption->image' | 'image->caption' | 'caption->melody' | 'melody->caption';

export function encodeDocument(p: Picture, kind: DocKind): number[] {
  const words = caption(p).map(id);
  const image = [TOK.boi, ...Array.from(render(p), (c) => IMAGE_BASE + c), TOK.eoi];
  const tones = [TOK.bot, ...melody(p).map((n) => TONE_BASE + n), TOK.eot];
  switch (kind) {
    case 'caption->image': return [TOK.bos, ...words, ...image, TOK.eos];
    case 'image->caption': return [TOK.bos, ...image, ...words, TOK.eos];
    case 'caption->melody': return [TOK.bos, ...words, ...tones, TOK.eos];
    case 'melody->caption': return [TOK.bos, ...tones, ...words, TOK.eos];
  }
}

// Every picture the corpus can draw, in a fixed order.
export function allPictures(): Picture[] {
  const out: Picture[] = [];
  for (const shape of SHAPES) for (const color of COLORS) for (const background of BACKGROUNDS)
    for (const size of SIZES) for (const place of PLACES) out.push({ shape, color, background, size, place });
  return out;
}

// Held out of training for evaluation: the pictures of these (shape, colour) pairs.
export function isHeldOut(p: Picture): boolean {
  return (SHAPES.indexOf(p.shape) * 3 + COLORS.indexOf(p.color)) % 11 === 0;
}

export function tokenName(t: number): string {
  return SHAPES_VOCAB.tokens![t] ?? `<${t}>`;
}

// Parses words into caption tokens (for `mixt sample --prompt`); unknown words are an error.
export function tokenizeCaption(text: string): number[] {
  const words = text.trim().toLowerCase().split(/\s+/).filter(Boolean);
  return words.map((w) => {
    const i = SHAPES_VOCAB.tokens!.indexOf(w);
    if (i < 0 || i >= SHAPES_VOCAB.modalities[0].range[1]) {
      throw new RangeError(`caption: unknown word "${w}"; the shapes corpus knows: ${WORDS.join(' ')}`);
    }
    return i;
  });
}

// Which shape a grid of palette indices shows: the template (any size, place, colour) that
// matches best, by cell agreement of the foreground mask. Used to score samples.
export function classifyShape(img: Uint8Array): { shape: Shape; agreement: number } {
  // The background is a background colour (palette 0 or 1), whichever covers more cells.
  const count = (v: number) => img.reduce((n, c) => n + (c === v ? 1 : 0), 0);
  const bg = count(0) >= count(1) ? 0 : 1;
  const fg = Array.from(img, (c) => (c === bg ? 0 : 1));
  let best: { shape: Shape; agreement: number } = { shape: SHAPES[0], agreement: -1 };
  for (const shape of SHAPES)
    for (const size of SIZES)
      for (const place of PLACES) {
        const t = render({ shape, size, place, color: COLORS[0], background: BACKGROUNDS[0] });
        let agree = 0;
        for (let i = 0; i < t.length; i++) agree += (t[i] !== 0 ? 1 : 0) === fg[i] ? 1 : 0;
        if (agree > best.agreement) best = { shape, agreement: agree };
      }
  return { shape: best.shape, agreement: best.agreement / img.length };
}
