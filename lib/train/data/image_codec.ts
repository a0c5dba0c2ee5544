// Pictures as tokens. An image (resized to size x size RGB) is cut into (size/patch)^2 patches,
// row-major, pixels row-major inside a patch, RGB.
// - discrete (the AR objective): each patch becomes the id of its nearest entry in a codebook
//   learned by k-means over patches of the user's training images (seeded k-means++ then Lloyd
//   iterations on a seeded reservoir sample). Patches rather than single colours: the sequence
//   length is fixed by the patch grid, and a patch codebook keeps local structure (edges, texture)
//   at a quarter of the tokens a per-pixel colour codebook needs for 2x2 patches; patch = 1 makes
//   it a colour codebook.
// - continuous (the Transfusion objective): each patch's values scaled to [-1, 1], no codebook.
// The spec (sizes and the codebook) is stored in the token file and the checkpoint.
import { hostRandom } from '../../core/random';

export type ImageCodecSpec =
  | { kind: 'kmeans'; size: number; patch: number; codebook: number[]; seed: number } // codebook: K x patchDim, 0..255
  | { kind: 'continuous'; size: number; patch: number };

export const patchDim = (c: { patch: number }) => c.patch * c.patch * 3;
export const patchesPerImage = (c: { size: number; patch: number }) => (c.size / c.patch) ** 2;

export function checkImageGeometry(size: number, patch: number, what = 'image'): void {
  if (!Number.isSafeInteger(size) || size < 1 || size > 1024) throw new RangeError(`${what}: size must be an integer in [1, 1024], received ${size}`);
  if (!Number.isSafeInteger(patch) || patch < 1 || size % patch !== 0) throw new RangeError(`${what}: patch must be a divisor of the size ${size}, received ${patch}`);
}

// RGB [size * size * 3] -> patches [P * patchDim] (same values, patch order).
export function toPatches(rgb: Uint8Array, size: number, patch: number): Float32Array {
  const per = size / patch, pd = patch * patch * 3;
  const out = new Float32Array(per * per * pd);
  for (let pr = 0; pr < per; pr++)
    for (let pc = 0; pc < per; pc++)
      for (let dy = 0; dy < patch; dy++)
        for (let dx = 0; dx < patch; dx++) {
          const s = ((pr * patch + dy) * size + pc * patch + dx) * 3, o = (pr * per + pc) * pd + (dy * patch + dx) * 3;
          out[o] = rgb[s];
          out[o + 1] = rgb[s + 1];
          out[o + 2] = rgb[s + 2];
        }
  return out;
}

export function fromPatches(patches: ArrayLike<number>, size: number, patch: number): Uint8Array {
  const per = size / patch, pd = patch * patch * 3;
  const rgb = new Uint8Array(size * size * 3);
  for (let pr = 0; pr < per; pr++)
    for (let pc = 0; pc < per; pc++)
      for (let dy = 0; dy < patch; dy++)
        for (let dx = 0; dx < patch; dx++)
          for (let c = 0; c < 3; c++) {
            const v = patches[(pr * per + pc) * pd + (dy * patch + dx) * 3 + c];
            rgb[((pr * patch + dy) * size + pc * patch + dx) * 3 + c] = Math.round(Math.min(255, Math.max(0, v)));
          }
  return rgb;
}

// Continuous latents in [-1, 1] and back.
export const normalisePatches = (rgb: Uint8Array, size: number, patch: number): Float32Array => toPatches(rgb, size, patch).map((v) => (v / 255) * 2 - 1);
export const latentsToImage = (lat: ArrayLike<number>, size: number, patch: number): Uint8Array => fromPatches(Array.from(lat, (v) => ((v + 1) / 2) * 255), size, patch);

function nearest(codebook: Float32Array, dim: number, x: Float32Array, off: number): number {
  let best = 0, bestD = Infinity;
  for (let k = 0, o = 0; o < codebook.length; k++, o += dim) {
    let d = 0;
    for (let j = 0; j < dim && d < bestD; j++) {
      const e = codebook[o + j] - x[off + j];
      d += e * e; // partial sums only grow: stop once past the best
    }
    if (d < bestD) {
      bestD = d;
      best = k;
    }
  }
  return best;
}

// A seeded reservoir of patches for k-means (memory bounded whatever the number of images).
export class PatchReservoir {
  readonly rows: Float32Array;
  count = 0;
  seen = 0;
  readonly #rand: () => number;
  constructor(readonly dim: number, readonly capacity: number, seed: number) {
    this.rows = new Float32Array(capacity * dim);
    this.#rand = hostRandom(seed * 31 + 17);
  }
  add(patches: Float32Array): void {
    for (let o = 0; o < patches.length; o += this.dim) {
      const slot = this.seen < this.capacity ? this.seen : Math.floor(this.#rand() * (this.seen + 1));
      this.seen++;
      if (slot < this.capacity) {
        this.rows.set(patches.subarray(o, o + this.dim), slot * this.dim);
        this.count = Math.min(this.capacity, this.count + 1);
      }
    }
  }
}

// k-means++ seeding, then Lloyd iterations; an empty cluster is re-seeded at the farthest point.
export function kmeans(data: Float32Array, dim: number, k: number, seed: number, iterations = 20): Float32Array {
  const n = data.length / dim;
  if (n < 1) throw new RangeError('kmeans: no image patches to learn a codebook from (every image was skipped?)');
  const rand = hostRandom(seed);
  const cb = new Float32Array(k * dim);
  const d2 = new Float64Array(n).fill(Infinity);
  let pick = Math.floor(rand() * n);
  for (let c = 0; c < k; c++) {
    cb.set(data.subarray(pick * dim, (pick + 1) * dim), c * dim);
    let total = 0;
    for (let i = 0; i < n; i++) {
      let d = 0;
      for (let j = 0; j < dim; j++) d += (data[i * dim + j] - cb[c * dim + j]) ** 2;
      if (d < d2[i]) d2[i] = d;
      total += d2[i];
    }
    if (total === 0) pick = Math.floor(rand() * n); // fewer distinct patches than k: duplicates are harmless
    else {
      let u = rand() * total;
      pick = n - 1;
      for (let i = 0; i < n; i++) if ((u -= d2[i]) <= 0) { pick = i; break; }
    }
  }
  const assign = new Int32Array(n);
  for (let it = 0; it < iterations; it++) {
    const sums = new Float64Array(k * dim), counts = new Float64Array(k);
    let farthest = 0, farD = -1;
    for (let i = 0; i < n; i++) {
      const a = nearest(cb, dim, data, i * dim);
      assign[i] = a;
      counts[a]++;
      let d = 0;
      for (let j = 0; j < dim; j++) {
        sums[a * dim + j] += data[i * dim + j];
        d += (data[i * dim + j] - cb[a * dim + j]) ** 2;
      }
      if (d > farD) {
        farD = d;
        farthest = i;
      }
    }
    for (let c = 0; c < k; c++) {
      if (counts[c]) for (let j = 0; j < dim; j++) cb[c * dim + j] = sums[c * dim + j] / counts[c];
      else cb.set(data.subarray(farthest * dim, (farthest + 1) * dim), c * dim);
    }
  }
  return cb;
}

export class ImageCodec {
  readonly #codebook: Float32Array | null;
  constructor(readonly spec: ImageCodecSpec) {
    checkImageGeometry(spec.size, spec.patch, 'image codec');
    if (spec.kind === 'kmeans') {
      if (!Array.isArray(spec.codebook) || !spec.codebook.length || spec.codebook.length % patchDim(spec) !== 0) {
        throw new RangeError(`image codec: the codebook must hold K x ${patchDim(spec)} values, received ${spec.codebook?.length}`);
      }
      this.#codebook = Float32Array.from(spec.codebook);
    } else if (spec.kind === 'continuous') this.#codebook = null;
    else throw new RangeError(`image codec: unknown kind ${JSON.stringify((spec as { kind?: unknown }).kind)} (expected 'kmeans' or 'continuous')`);
  }
  get discrete(): boolean {
    return this.#codebook !== null;
  }
  // codebook entries (discrete) or 1 (the continuous placeholder token)
  get ids(): number {
    return this.#codebook ? this.#codebook.length / patchDim(this.spec) : 1;
  }
  get patches(): number {
    return patchesPerImage(this.spec);
  }
  get patchDim(): number {
    return patchDim(this.spec);
  }
  // RGB -> codebook ids, one per patch (discrete)
  encode(rgb: Uint8Array): number[] {
    const p = toPatches(rgb, this.spec.size, this.spec.patch), dim = this.patchDim;
    return Array.from({ length: this.patches }, (_, i) => nearest(this.#codebook!, dim, p, i * dim));
  }
  decode(ids: number[]): Uint8Array {
    const dim = this.patchDim, out = new Float32Array(ids.length * dim);
    ids.forEach((id, i) => out.set(this.#codebook!.subarray(id * dim, (id + 1) * dim), i * dim));
    return fromPatches(out, this.spec.size, this.spec.patch);
  }
  latents(rgb: Uint8Array): Float32Array {
    return normalisePatches(rgb, this.spec.size, this.spec.patch);
  }
  fromLatents(lat: ArrayLike<number>): Uint8Array {
    return latentsToImage(lat, this.spec.size, this.spec.patch);
  }
}

export function learnCodebook(res: PatchReservoir, o: { size: number; patch: number; codebook: number; seed: number }): ImageCodecSpec {
  const cb = kmeans(res.rows.subarray(0, res.count * res.dim), res.dim, o.codebook, o.seed);
  return { kind: 'kmeans', size: o.size, patch: o.patch, seed: o.seed, codebook: Array.from(cb, (v) => Math.round(v * 100) / 100) };
}
