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

// The melody: a four-note motif per shape (played twice for big shapes), a rest, then a closing
// note per colour. Each note depends on one attribute, so the melody of a held-out (shape, colour)
// pair is made of parts seen in training (a transposition by colour would make every note of it new).
const MOTIFS = [[0, 4, 7, 4], [0, 0, 7, 7], [0, 2, 4, 2], [0, 4, 8, 0], [7, 0, 7, 0], [0, 5, 8, 5], [0, 1, 2, 3], [3, 2, 1, 0]];
export function melody(p: Picture): number[] {
  const motif = MOTIFS[SHAPES.indexOf(p.shape)];
  const close = TONES - COLORS.length + COLORS.indexOf(p.color);
  return [...motif, ...(p.size === 'big' ? motif : []), TONES, close];
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
export function isHeldOut(p: Pick<Picture, 'shape' | 'color'>): boolean {
  return (SHAPES.indexOf(p.shape) * 3 + COLORS.indexOf(p.color)) % 11 === 0;
}

// The held-out pairs in words: "red square, cyan circle, ...".
export const HELD_OUT_PAIRS = SHAPES.flatMap((shape) => COLORS.filter((color) => isHeldOut({ shape, color })).map((color) => `${color} ${shape}`)).join(', ');

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

// The grammar of every caption of the corpus, and the words of each slot.
export const CAPTION_GRAMMAR = 'a <size> <colour> <shape> at the <place> on <background>';
export const CAPTION_SLOTS = { size: SIZES, colour: COLORS, shape: SHAPES, place: PLACES, background: BACKGROUNDS } as const;
export const CAPTION_VOCABULARY = Object.entries(CAPTION_SLOTS).map(([slot, words]) => `<${slot}>: ${words.join(' | ')}`).join('; ');

let captions: Map<string, Picture> | null = null;

// The picture a caption describes; a caption outside the grammar is a RangeError that names the
// grammar, the vocabulary of each slot and where the caption left it.
export function parseCaption(text: string): Picture {
  if (typeof text !== 'string') throw new TypeError(`caption: expected a string, received ${typeof text}`);
  const said = text.trim().toLowerCase().replace(/\s+/g, ' ');
  const fail = (why: string): never => {
    throw new RangeError(`caption: ${why}; captions follow "${CAPTION_GRAMMAR}" (${CAPTION_VOCABULARY}), e.g. "${DEFAULT_CAPTION}"`);
  };
  if (!said) fail('the caption is empty');
  captions ??= new Map(allPictures().map((q) => [caption(q).join(' '), q]));
  const p = captions.get(said);
  if (p) return { ...p };
  const known = new Set(WORDS as readonly string[]);
  const unknown = said.split(' ').filter((w) => !known.has(w));
  return fail(unknown.length ? `unknown word${unknown.length > 1 ? 's' : ''} ${unknown.map((w) => `"${w}"`).join(', ')} in "${said}"` : `"${said}" is not a caption of the corpus`);
}

export const DEFAULT_CAPTION = 'a big red circle at the center on black';

// The pictures of the corpus rendered once: the templates the scorer compares samples with.
let rendered: { picture: Picture; grid: Uint8Array }[] | null = null;

// The corpus picture nearest to a grid of palette indices: the one with the most equal cells (its
// shape, colour, size, place and background are what the grid shows), and that count.
export function nearestPicture(img: ArrayLike<number>): { picture: Picture; agreement: number } {
  if (!img || img.length !== GRID * GRID) throw new RangeError(`nearestPicture: argument "img" expected ${GRID * GRID} palette indices, received ${img?.length ?? img}`);
  rendered ??= allPictures().map((picture) => ({ picture, grid: render(picture) }));
  let best = rendered[0], bestAgree = -1;
  for (const r of rendered) {
    let agree = 0;
    for (let i = 0; i < r.grid.length; i++) if (r.grid[i] === img[i]) agree++;
    if (agree > bestAgree) {
      best = r;
      bestAgree = agree;
    }
  }
  return { picture: best.picture, agreement: bestAgree };
}
