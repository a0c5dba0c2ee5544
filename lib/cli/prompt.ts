// Prompting a model trained on user data, through the codec its checkpoint carries: text
// continuation for a text model, a picture for a caption when the model has an image modality
// (codebook tokens decoded, or continuous patches denoised), and a caption for a picture.
import * as fs from 'fs';
import * as path from 'path';
import { sampleImage } from '../model/diffusion_sample';
import { generate } from '../model/generate';
import { Model } from '../model/model';
import { Codec, CodecSpec } from '../train/data/codec';
import { loadImageFile } from '../train/data/image_decode';
import { encodePng } from './png';

export function modelCodec(model: Model): Codec | null {
  return model.cfg.codec ? Codec.fromSpec(model.cfg.codec as CodecSpec, 'checkpoint config: codec') : null;
}

export interface PromptOptions {
  temperature: number;
  seed: number;
  maxTokens?: number; // text: at most this many new tokens (stops at <eos>)
  steps?: number; // Transfusion: denoising steps
  guidance?: number;
}

// Samples text after `prefix` until <eos> (or maxTokens), restricted to text ids.
async function continueText(model: Model, codec: Codec, prefix: number[], o: PromptOptions): Promise<string> {
  const out: number[] = [];
  const max = Math.min(o.maxTokens ?? 64, model.cfg.maxSeqLen - prefix.length);
  const [lo, hi] = codec.textRange;
  for (let i = 0; i < max; i++) {
    // one token at a time: stop at <eos>, never emit <bos>/<boi>/<eoi> inside text
    const [t] = await generate(model, [...prefix, ...out], 1, { temperature: o.temperature, range: [lo, hi], seed: o.seed * 7919 + i });
    if (t === codec.eos) break;
    if (t >= codec.tokenizer.size) continue;
    out.push(t);
  }
  return codec.decodeText(out);
}

export async function textContinuation(model: Model, codec: Codec, prompt: string, o: PromptOptions): Promise<string> {
  return continueText(model, codec, [codec.bos, ...codec.encodeText(prompt)], o);
}

// caption -> RGB pixels [size * size * 3]
export async function pictureForCaption(model: Model, codec: Codec, caption: string, o: PromptOptions): Promise<Uint8Array> {
  const img = codec.image;
  if (!img) throw new RangeError('mixt sample: this model has no image modality');
  const words = codec.encodeText(caption);
  if (!img.discrete) {
    const lat = await sampleImage(model, words, { steps: o.steps ?? 50, guidance: o.guidance ?? 3, seed: o.seed, patchToken: codec.imageBase, patches: img.patches, beginImage: codec.boi, beginSequence: codec.bos });
    return img.fromLatents(lat);
  }
  const ids = await generate(model, [codec.bos, ...words, codec.boi], img.patches, { temperature: o.temperature, range: codec.imageRange!, seed: o.seed });
  return codec.pixels(ids);
}

// picture file -> caption (discrete image models)
export async function captionForPicture(model: Model, codec: Codec, file: string, o: PromptOptions): Promise<string> {
  const img = codec.image;
  if (!img) throw new RangeError('--image: this model has no image modality');
  if (!img.discrete) throw new RangeError('--image: captioning needs picture tokens; this is a Transfusion model (continuous pictures)');
  const rgb = loadImageFile(file, img.spec.size).rgb;
  return continueText(model, codec, [codec.bos, codec.boi, ...codec.imageTokens(rgb), codec.eoi], o);
}

export function writePng(file: string, rgb: Uint8Array, size: number, scale = 8): void {
  const w = size * scale, out = new Uint8Array(w * w * 3);
  for (let y = 0; y < w; y++)
    for (let x = 0; x < w; x++) out.set(rgb.subarray((Math.floor(y / scale) * size + Math.floor(x / scale)) * 3, (Math.floor(y / scale) * size + Math.floor(x / scale)) * 3 + 3), (y * w + x) * 3);
  fs.mkdirSync(path.dirname(path.resolve(file)), { recursive: true });
  fs.writeFileSync(file, encodePng(w, w, out));
}

// `mixt sample` on a checkpoint of user data.
export async function runCodecSample(model: Model, codec: Codec, o: PromptOptions & { prompt?: string; image?: string; png?: string; json?: boolean }): Promise<void> {
  if (o.image) {
    const caption = await captionForPicture(model, codec, o.image, o);
    if (o.json) console.log(JSON.stringify({ type: 'caption', image: o.image, caption }));
    else console.log(`${o.image} -> "${caption}"`);
    return;
  }
  const prompt = o.prompt ?? '';
  if (codec.image) {
    const rgb = await pictureForCaption(model, codec, prompt, o);
    const file = o.png ?? 'sample.png';
    writePng(file, rgb, codec.image.spec.size);
    if (o.json) console.log(JSON.stringify({ type: 'sample', prompt, png: file }));
    else console.log(`"${prompt}" -> wrote ${file} (${codec.image.spec.size}x${codec.image.spec.size} pixels, shown 8x)`);
    return;
  }
  const text = await textContinuation(model, codec, prompt, o);
  if (o.json) console.log(JSON.stringify({ type: 'text', prompt, text }));
  else console.log(`${prompt}${text}`);
}
