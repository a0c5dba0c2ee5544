// The codec of user data: a text tokenizer, four special tokens, and (with pictures) an image codec.
// It fixes the shared vocabulary: text ids [0, T), then <bos> <eos> <boi> <eoi>, then the image ids
// (codebook entries, or one placeholder per patch for continuous pictures). Stored in the token
// file's vocabulary and in the checkpoint's config, so sample/eval decode text and pictures anywhere.
import { ImageCodec, ImageCodecSpec } from './image_codec';
import { TextTokenizer, TokenizerSpec, tokenizerFromSpec } from './tokenizer';
import { VocabSpec } from './vocab';

export interface CodecSpec {
  text: TokenizerSpec;
  image?: ImageCodecSpec;
}

export class Codec {
  readonly bos: number;
  readonly eos: number;
  readonly boi: number;
  readonly eoi: number;
  readonly imageBase: number;
  readonly image: ImageCodec | null;

  constructor(readonly tokenizer: TextTokenizer, image?: ImageCodecSpec) {
    const T = tokenizer.size;
    [this.bos, this.eos, this.boi, this.eoi] = [T, T + 1, T + 2, T + 3];
    this.imageBase = T + 4;
    this.image = image ? new ImageCodec(image) : null;
  }

  static fromSpec(spec: CodecSpec, what = 'codec'): Codec {
    if (typeof spec !== 'object' || spec === null || typeof spec.text !== 'object') throw new RangeError(`${what}: expected {text: tokenizer spec, image?: image codec spec}`);
    return new Codec(tokenizerFromSpec(spec.text), spec.image);
  }

  get spec(): CodecSpec {
    return { text: this.tokenizer.spec, ...(this.image ? { image: this.image.spec } : {}) };
  }

  get textRange(): [number, number] {
    return [0, this.imageBase];
  }
  get imageRange(): [number, number] | null {
    return this.image ? [this.imageBase, this.imageBase + this.image.ids] : null;
  }

  vocab(): VocabSpec {
    const img = this.imageRange;
    return {
      size: img ? img[1] : this.imageBase,
      modalities: [{ name: 'text', range: this.textRange }, ...(img ? [{ name: 'image', range: img }] : [])],
      codec: this.spec,
    };
  }

  // Text ids of a string (the tokenizer's, unchanged) and back, specials dropped.
  encodeText(text: string): number[] {
    return this.tokenizer.encode(text);
  }
  decodeText(ids: number[]): string {
    return this.tokenizer.decode(ids.filter((t) => t < this.tokenizer.size));
  }

  // RGB pixels -> the image's token ids (discrete: codebook ids; continuous: placeholders).
  imageTokens(rgb: Uint8Array): number[] {
    const img = this.image!;
    return img.discrete ? img.encode(rgb).map((c) => this.imageBase + c) : new Array(img.patches).fill(this.imageBase);
  }
  pixels(imageIds: number[]): Uint8Array {
    return this.image!.decode(imageIds.map((t) => t - this.imageBase));
  }
}

// The codec a vocabulary carries (token files and checkpoints of user data), or null.
export function codecOf(vocab: { codec?: CodecSpec } | undefined, what = 'vocabulary'): Codec | null {
  return vocab?.codec ? Codec.fromSpec(vocab.codec, `${what}: codec`) : null;
}
