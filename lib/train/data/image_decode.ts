// Reads a PNG or JPEG (pngjs, jpeg-js: pure JS, no compiler) and resizes it to size x size RGB by
// area averaging (a box filter over the source pixels each target pixel covers; a plain centre crop
// first keeps the aspect ratio). Alpha is composited over black. Pure: runs in worker threads too.
import * as fs from 'fs';

export interface DecodedImage {
  rgb: Uint8Array; // size * size * 3, row-major
  width: number; // of the source
  height: number;
}

const PNG_MAGIC = [0x89, 0x50, 0x4e, 0x47];
const JPEG_MAGIC = [0xff, 0xd8, 0xff];
const startsWith = (b: Uint8Array, m: number[]) => m.every((x, i) => b[i] === x);

// A broken input: names the file and why (caught by the packer and reported, never silently dropped).
export class ImageInputError extends Error {
  constructor(readonly file: string, readonly reason: string) {
    super(`${file}: ${reason}`);
  }
}

export function decodeImageBuffer(buf: Uint8Array, file: string): { width: number; height: number; rgba: Uint8Array } {
  const fail = (why: string): never => {
    throw new ImageInputError(file, why);
  };
  try {
    if (startsWith(buf, PNG_MAGIC)) {
      // eslint-disable-next-line @typescript-eslint/no-require-imports
      const { PNG } = require('pngjs');
      const png = PNG.sync.read(Buffer.from(buf.buffer, buf.byteOffset, buf.length));
      return { width: png.width, height: png.height, rgba: new Uint8Array(png.data.buffer, png.data.byteOffset, png.data.length) };
    }
    if (startsWith(buf, JPEG_MAGIC)) {
      // eslint-disable-next-line @typescript-eslint/no-require-imports
      const jpeg = require('jpeg-js');
      const img = jpeg.decode(buf, { useTArray: true, formatAsRGBA: true, maxMemoryUsageInMB: 512, maxResolutionInMP: 100 });
      return { width: img.width, height: img.height, rgba: img.data };
    }
  } catch (e) {
    return fail(`cannot decode (${(e as Error).message || 'truncated or corrupt'})`);
  }
  return fail(buf.length === 0 ? 'empty file' : 'not a PNG or JPEG (unknown signature)');
}

export function resizeRgba(src: { width: number; height: number; rgba: Uint8Array }, size: number): Uint8Array {
  const { width: W, height: H, rgba } = src;
  const side = Math.min(W, H), x0 = (W - side) / 2, y0 = (H - side) / 2; // centre crop to a square
  const out = new Uint8Array(size * size * 3);
  const step = side / size;
  for (let ty = 0; ty < size; ty++) {
    const sy0 = y0 + ty * step, sy1 = sy0 + step;
    for (let tx = 0; tx < size; tx++) {
      const sx0 = x0 + tx * step, sx1 = sx0 + step;
      let r = 0, g = 0, b = 0, wsum = 0;
      for (let y = Math.floor(sy0); y < Math.ceil(sy1); y++) {
        const wy = Math.min(y + 1, sy1) - Math.max(y, sy0);
        for (let x = Math.floor(sx0); x < Math.ceil(sx1); x++) {
          const w = wy * (Math.min(x + 1, sx1) - Math.max(x, sx0));
          const o = (y * W + x) * 4, a = rgba[o + 3] / 255;
          r += w * rgba[o] * a;
          g += w * rgba[o + 1] * a;
          b += w * rgba[o + 2] * a;
          wsum += w;
        }
      }
      const o = (ty * size + tx) * 3;
      out[o] = Math.round(r / wsum);
      out[o + 1] = Math.round(g / wsum);
      out[o + 2] = Math.round(b / wsum);
    }
  }
  return out;
}

export function loadImageFile(file: string, size: number): DecodedImage {
  let buf: Buffer;
  try {
    buf = fs.readFileSync(file);
  } catch (e) {
    throw new ImageInputError(file, (e as NodeJS.ErrnoException).code === 'ENOENT' ? 'file not found' : `cannot read (${(e as Error).message})`);
  }
  const img = decodeImageBuffer(buf, file);
  if (!(img.width > 0 && img.height > 0)) throw new ImageInputError(file, `bad dimensions ${img.width}x${img.height}`);
  return { rgb: resizeRgba(img, size), width: img.width, height: img.height };
}
