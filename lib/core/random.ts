// Seeded counter-based generator state: (seed, offset). A fill of n values uses Philox blocks
// [offset, offset + ceil(n/4)) and advances the offset, on any device, so the same seed gives the
// same numbers on CPU and CUDA. The state is two integers: checkpoints save and restore it.
import { checkNumber } from './check';
import { typeError } from './errors';

export interface GeneratorState {
  seed: number;
  offset: number;
}

export class Generator {
  #seed: number;
  #offset = 0;

  constructor(seed = 0) {
    this.#seed = checkNumber('Generator', 'seed', seed, { integer: true, min: 0, max: Number.MAX_SAFE_INTEGER });
  }
  // Members used on something that is not a Generator throw a TypeError naming the member.
  static #own(g: unknown, member: string): Generator {
    if (typeof g !== 'object' || g === null || !(#seed in g)) throw typeError(`Generator.${member}`, 'this', 'a Generator', g);
    return g as Generator;
  }
  get seed(): number {
    return Generator.#own(this, 'seed').#seed;
  }
  get offset(): number {
    return Generator.#own(this, 'offset').#offset;
  }
  // Claims the blocks for n values; returns the offset to fill from.
  take(n: number): number {
    Generator.#own(this, 'take');
    checkNumber('Generator.take', 'n', n, { integer: true, min: 0 });
    const at = this.#offset;
    this.#offset += Math.ceil(n / 4);
    return at;
  }
  state(): GeneratorState {
    Generator.#own(this, 'state');
    return { seed: this.#seed, offset: this.#offset };
  }
  setState(s: GeneratorState): void {
    Generator.#own(this, 'setState');
    this.#seed = checkNumber('Generator.setState', 'seed', s?.seed, { integer: true, min: 0 });
    this.#offset = checkNumber('Generator.setState', 'offset', s?.offset, { integer: true, min: 0 });
  }
}

let defaultGen = new Generator(0);

export function defaultGenerator(): Generator {
  return defaultGen;
}

// Reseeds the default generator (as torch.manual_seed).
export function manualSeed(seed: number): Generator {
  defaultGen = new Generator(seed);
  return defaultGen;
}

export function splitU64(v: number): [number, number] {
  return [v % 0x100000000, Math.floor(v / 0x100000000)];
}

// A small seeded host PRNG (mulberry32) for decisions made on the host: data order, sampling,
// diffusion timesteps. Uniform doubles in [0, 1).
export function hostRandom(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}
