// A small captioned image set generated for the tests (no downloads): 16x16 PNGs of a coloured
// square or disc on a dark, noisy background, captioned with their colour and shape, in an
// ImageFolder layout (folder name = caption) or with a captions.csv; and a pixel classifier that
// says which colour a picture shows.
import * as fs from 'fs';
import * as path from 'path';
import { PNG } from 'pngjs';

export const COLOURS: Record<string, [number, number, number]> = { red: [220, 30, 30], green: [30, 200, 50], blue: [40, 70, 230], yellow: [235, 220, 40] };
export const SHAPES = ['square', 'disc'] as const;

function rand(seed: number): () => number {
  let s = seed >>> 0;
  return () => ((s = (Math.imul(s, 1664525) + 1013904223) >>> 0) / 2 ** 32);
}

export function drawPicture(colour: string, shape: string, seed: number, size = 16): Buffer {
  const r = rand(seed);
  const png = new PNG({ width: size, height: size });
  const [cr, cg, cb] = COLOURS[colour];
  const side = 10 + Math.floor(r() * 4), x0 = Math.floor(r() * (size - side)), y0 = Math.floor(r() * (size - side));
  for (let y = 0; y < size; y++)
    for (let x = 0; x < size; x++) {
      const dx = x - (x0 + side / 2 - 0.5), dy = y - (y0 + side / 2 - 0.5);
      const inside = shape === 'square' ? x >= x0 && x < x0 + side && y >= y0 && y < y0 + side : dx * dx + dy * dy <= (side / 2) ** 2;
      const n = Math.floor(r() * 30);
      const o = (y * size + x) * 4;
      png.data[o] = inside ? cr : n;
      png.data[o + 1] = inside ? cg : n;
      png.data[o + 2] = inside ? cb : n;
      png.data[o + 3] = 255;
    }
  return PNG.sync.write(png);
}

// ImageFolder: <dir>/<colour>_<shape>/<k>.png, `perClass` pictures per class.
export function writeImageFolder(dir: string, perClass: number, seed = 1): string[] {
  const files: string[] = [];
  let k = 0;
  for (const colour of Object.keys(COLOURS))
    for (const shape of SHAPES) {
      const sub = path.join(dir, `${colour}_${shape}`);
      fs.mkdirSync(sub, { recursive: true });
      for (let i = 0; i < perClass; i++) {
        const f = path.join(sub, `${i}.png`);
        fs.writeFileSync(f, drawPicture(colour, shape, seed * 100003 + k++));
        files.push(f);
      }
    }
  return files;
}

// Which colour an RGB picture shows: the palette colour nearest to the mean of its bright pixels.
export function classifyColour(rgb: Uint8Array): string {
  let n = 0;
  const sum = [0, 0, 0];
  for (let i = 0; i < rgb.length; i += 3) {
    if (Math.max(rgb[i], rgb[i + 1], rgb[i + 2]) < 60) continue;
    n++;
    for (let c = 0; c < 3; c++) sum[c] += rgb[i + c];
  }
  if (!n) return 'none';
  let best = 'none', bestD = Infinity;
  for (const [name, col] of Object.entries(COLOURS)) {
    const d = col.reduce((a, v, c) => a + (v - sum[c] / n) ** 2, 0);
    if (d < bestD) (bestD = d), (best = name);
  }
  return best;
}
