// A minimal PNG encoder (8-bit RGB, one IDAT, zlib from Node) for sampled pictures.
import * as zlib from 'zlib';

const CRC_TABLE = (() => {
  const t = new Uint32Array(256);
  for (let n = 0; n < 256; n++) {
    let c = n;
    for (let k = 0; k < 8; k++) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1;
    t[n] = c >>> 0;
  }
  return t;
})();

function crc32(buf: Buffer): number {
  let c = 0xffffffff;
  for (const b of buf) c = CRC_TABLE[(c ^ b) & 0xff] ^ (c >>> 8);
  return (c ^ 0xffffffff) >>> 0;
}

function chunk(type: string, data: Buffer): Buffer {
  const len = Buffer.alloc(4);
  len.writeUInt32BE(data.length);
  const td = Buffer.concat([Buffer.from(type, 'latin1'), data]);
  const crc = Buffer.alloc(4);
  crc.writeUInt32BE(crc32(td));
  return Buffer.concat([len, td, crc]);
}

// rgb: width * height * 3 bytes, row-major.
export function encodePng(width: number, height: number, rgb: Uint8Array): Buffer {
  const raw = Buffer.alloc((width * 3 + 1) * height);
  for (let y = 0; y < height; y++) {
    raw[y * (width * 3 + 1)] = 0; // filter: none
    Buffer.from(rgb.buffer, rgb.byteOffset + y * width * 3, width * 3).copy(raw, y * (width * 3 + 1) + 1);
  }
  const ihdr = Buffer.alloc(13);
  ihdr.writeUInt32BE(width, 0);
  ihdr.writeUInt32BE(height, 4);
  ihdr[8] = 8; // bit depth
  ihdr[9] = 2; // colour type: RGB
  return Buffer.concat([
    Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]),
    chunk('IHDR', ihdr),
    chunk('IDAT', zlib.deflateSync(raw)),
    chunk('IEND', Buffer.alloc(0)),
  ]);
}

// A grid of palette colours, each cell scaled to `cell` x `cell` pixels.
export function gridPng(grid: ArrayLike<number>, cols: number, rows: number, palette: [number, number, number][], cell = 16): Buffer {
  const w = cols * cell, h = rows * cell;
  const rgb = new Uint8Array(w * h * 3);
  for (let y = 0; y < h; y++)
    for (let x = 0; x < w; x++) {
      const c = palette[grid[Math.floor(y / cell) * cols + Math.floor(x / cell)]] ?? [255, 0, 255];
      rgb.set(c, (y * w + x) * 3);
    }
  return encodePng(w, h, rgb);
}

// RGB pixels [rows * cols * 3], each scaled to `cell` x `cell`.
export function rgbPng(rgb: Uint8Array, cols: number, rows: number, cell = 16): Buffer {
  const w = cols * cell, h = rows * cell;
  const out = new Uint8Array(w * h * 3);
  for (let y = 0; y < h; y++)
    for (let x = 0; x < w; x++) {
      const s = (Math.floor(y / cell) * cols + Math.floor(x / cell)) * 3;
      out.set(rgb.subarray(s, s + 3), (y * w + x) * 3);
    }
  return encodePng(w, h, out);
}

// Square RGB tiles (`side` x `side` pixels each) in a mosaic of `cols` columns, each pixel scaled to
// `cell` x `cell`, a gap between tiles; framed tiles get a white border in the gap.
export function mosaicPng(tiles: { rgb: Uint8Array; framed?: boolean }[], cols: number, side: number, cell = 8, gap = 4): Buffer {
  const rows = Math.ceil(tiles.length / cols), pitch = side * cell + gap;
  const w = cols * pitch + gap, h = rows * pitch + gap;
  const out = new Uint8Array(w * h * 3).fill(40);
  tiles.forEach((t, k) => {
    const x0 = gap + (k % cols) * pitch, y0 = gap + Math.floor(k / cols) * pitch;
    for (let y = -2; y < side * cell + 2; y++)
      for (let x = -2; x < side * cell + 2; x++) {
        const inside = y >= 0 && x >= 0 && y < side * cell && x < side * cell;
        if (!inside && !t.framed) continue;
        const s = inside ? (Math.floor(y / cell) * side + Math.floor(x / cell)) * 3 : -1;
        const px = ((y0 + y) * w + x0 + x) * 3;
        if (inside) out.set(t.rgb.subarray(s, s + 3), px);
        else out.set([255, 255, 255], px);
      }
  });
  return encodePng(w, h, out);
}
