// `mixt sample --score N`: draws pictures for N captions of pictures seen in training and N of
// held-out (shape, colour) pairs, and judges each attribute from the pixels: the corpus picture
// nearest to the sample (most equal cells) says which shape, colour, size, place and background it
// shows. A sample of noise scores at chance on every attribute; "exact" counts samples equal, cell
// for cell, to the picture the caption describes.
import * as cliProgress from 'cli-progress';
import { hostRandom } from '../core/random';
import { BACKGROUNDS, COLORS, PLACES, Picture, SHAPES, SIZES, allPictures, caption, isHeldOut, nearestPicture, render, tokenizeCaption } from '../train/data/shapes';
import { fmt, table } from './common';

export const ATTRIBUTES = ['shape', 'color', 'size', 'place', 'background'] as const;
export type Attribute = (typeof ATTRIBUTES)[number];
// The rate of a picture drawn at random, per attribute.
export const CHANCE: Record<Attribute, number> = {
  shape: 1 / SHAPES.length, color: 1 / COLORS.length, size: 1 / SIZES.length, place: 1 / PLACES.length, background: 1 / BACKGROUNDS.length,
};

export interface Judgement {
  shown: Picture; // what the sample shows (the nearest corpus picture)
  match: Record<Attribute, boolean>;
  exact: boolean; // every cell equals the asked picture
}

// What a sample (palette indices) shows, against the picture its caption asked for.
export function judge(asked: Picture, img: Uint8Array): Judgement {
  const shown = nearestPicture(img).picture;
  const match = Object.fromEntries(ATTRIBUTES.map((a) => [a, shown[a] === asked[a]])) as Record<Attribute, boolean>;
  const want = render(asked);
  return { shown, match, exact: want.every((c, i) => c === img[i]) };
}

export interface ScoreSplit {
  n: number;
  rates: Record<Attribute, number>; // fraction of samples showing the asked value
  exact: number;
}

export type Draw = (words: number[], seed: number) => Promise<Uint8Array>;

// Draws `n` captions of one split (seeded) and judges their samples.
export async function scoreSplit(draw: Draw, n: number, heldOut: boolean, seed: number, tick: () => void = () => {}): Promise<ScoreSplit> {
  const pics = allPictures().filter((p) => isHeldOut(p) === heldOut);
  const rand = hostRandom(seed * 2 + (heldOut ? 1 : 0));
  const hits = Object.fromEntries(ATTRIBUTES.map((a) => [a, 0])) as Record<Attribute, number>;
  let exact = 0;
  for (let i = 0; i < n; i++) {
    const p = pics[Math.floor(rand() * pics.length)];
    const j = judge(p, await draw(tokenizeCaption(caption(p).join(' ')), seed + i));
    for (const a of ATTRIBUTES) hits[a] += j.match[a] ? 1 : 0;
    exact += j.exact ? 1 : 0;
    tick();
  }
  const rates = Object.fromEntries(ATTRIBUTES.map((a) => [a, hits[a] / n])) as Record<Attribute, number>;
  return { n, rates, exact: exact / n };
}

export interface ScoreReport {
  seen?: ScoreSplit;
  heldOut: ScoreSplit;
}

// Both splits (or only the held-out one), with a progress bar on stderr unless quiet.
export async function scoreModel(draw: Draw, o: { n: number; seed: number; heldOutOnly?: boolean; quiet?: boolean }): Promise<ScoreReport> {
  const total = o.heldOutOnly ? o.n : 2 * o.n;
  const bar = o.quiet
    ? null
    : new cliProgress.SingleBar(
        { stream: process.stderr, format: 'score {bar} {value}/{total} pictures', hideCursor: true, noTTYOutput: !process.stderr.isTTY, notTTYSchedule: 5000 },
        cliProgress.Presets.shades_classic,
      );
  bar?.start(total, 0);
  const tick = () => bar?.increment();
  try {
    const seen = o.heldOutOnly ? undefined : await scoreSplit(draw, o.n, false, o.seed, tick);
    const heldOut = await scoreSplit(draw, o.n, true, o.seed, tick);
    return { ...(seen ? { seen } : {}), heldOut };
  } finally {
    bar?.stop();
  }
}

const pct = (x: number) => `${fmt(100 * x, 1)}%`;

// The report as a table: one row per attribute, a column per split, chance beside.
export function scoreTable(r: ScoreReport): string {
  const splits: [string, ScoreSplit][] = [...(r.seen ? [['seen in training', r.seen] as [string, ScoreSplit]] : []), ['held-out pairs', r.heldOut]];
  const t = table(['the picture shows the asked', ...splits.map(([name, s]) => `${name} (${s.n})`), 'chance']);
  for (const a of ATTRIBUTES) t.push([a === 'color' ? 'colour' : a, ...splits.map(([, s]) => pct(s.rates[a])), pct(CHANCE[a])]);
  t.push(['picture, cell for cell', ...splits.map(([, s]) => pct(s.exact)), '-']);
  return t.toString();
}
