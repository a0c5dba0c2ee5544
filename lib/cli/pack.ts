// `mixt data pack`: runs the packer with a progress bar (files/s, documents, tokens) on stderr and
// reports, at the end, every input that was skipped with its path and reason.
import * as cliProgress from 'cli-progress';
import { PackOptions, PackProgress, packInputs } from '../train/data/pack';
import { VocabSpec } from '../train/data/vocab';
import { readJsonOption } from './common';

export interface PackCliOptions {
  out?: string;
  evalOut?: string;
  heldOut?: number;
  heldOutFrom?: string[];
  tokenizer?: string;
  vocab?: string;
  objective?: string;
  imageSize?: number;
  patch?: number;
  codebook?: number;
  directions?: string;
  maxChars?: number;
  threads?: number;
  seed?: number;
  strict?: boolean;
  json?: boolean;
}

const readVocab = (file: string) => readJsonOption('--vocab', file, '{size, modalities:[{name, range:[lo, hi]}]}') as VocabSpec;

function progressBar(quiet: boolean): { update(p: PackProgress): void; stop(): void } {
  if (quiet) return { update() {}, stop() {} };
  const bar = new cliProgress.SingleBar(
    {
      stream: process.stderr,
      format: 'pack {phase} {bar} {value}/{total} | {files} files, {fps} files/s | {documents} documents | {tokens} tokens',
      hideCursor: true,
      noTTYOutput: !process.stderr.isTTY,
      notTTYSchedule: 5000,
    },
    cliProgress.Presets.shades_classic,
  );
  let started = false;
  return {
    update(p: PackProgress) {
      const payload = { phase: p.phase, files: p.files, fps: Math.round(p.files / Math.max(1e-3, p.seconds)), documents: p.documents, tokens: p.tokens };
      if (!started) {
        bar.start(p.total, p.done, payload);
        started = true;
      }
      bar.setTotal(p.total);
      bar.update(p.done, payload);
    },
    stop() {
      if (started) bar.stop();
    },
  };
}

export async function runPack(args: string[], o: PackCliOptions): Promise<void> {
  const inputs = [...args];
  let out = o.out;
  if (!out && inputs.length > 1 && inputs[inputs.length - 1].endsWith('.mixt')) out = inputs.pop();
  if (!out) throw new RangeError('mixt data pack: give the output token file with --out <file.mixt>');
  if (o.objective !== undefined && o.objective !== 'ar' && o.objective !== 'transfusion') throw new RangeError(`--objective must be 'ar' or 'transfusion', received "${o.objective}"`);
  if (o.directions !== undefined && !['both', 'caption-image', 'image-caption'].includes(o.directions)) throw new RangeError(`--directions must be 'both', 'caption-image' or 'image-caption', received "${o.directions}"`);
  const bar = progressBar(!!o.json);
  let r;
  try {
    r = await packInputs({
      inputs, out, evalOut: o.evalOut, heldOut: o.heldOut, heldOutFrom: o.heldOutFrom, tokenizer: o.tokenizer,
      vocab: o.vocab ? readVocab(o.vocab) : undefined, objective: o.objective as PackOptions['objective'],
      imageSize: o.imageSize, patch: o.patch, codebook: o.codebook, directions: o.directions as PackOptions['directions'],
      maxChars: o.maxChars, threads: o.threads, seed: o.seed, onProgress: (p) => bar.update(p),
    });
  } finally {
    bar.stop();
  }
  for (const s of r.skipped) process.stderr.write(`mixt: skipped ${s.source}: ${s.reason}\n`);
  if (o.json) console.log(JSON.stringify({ type: 'pack', ...r, vocab: { size: r.vocab.size, modalities: r.vocab.modalities } }));
  else {
    console.log(`packed ${r.train.documents} documents, ${r.train.tokens} tokens into ${r.train.path}`);
    if (r.eval) console.log(`held out ${r.eval.documents} documents, ${r.eval.tokens} tokens into ${r.eval.path}`);
    console.log(`vocabulary ${r.vocab.size}: ${r.vocab.modalities.map((m) => `${m.name} [${m.range[0]}, ${m.range[1]})`).join(', ')}`);
    if (r.images.decoded || r.images.broken) console.log(`pictures: ${r.images.decoded} decoded (${r.images.threads} threads, ${(r.images.decoded / Math.max(1e-3, r.images.seconds)).toFixed(0)} images/s), ${r.images.broken} broken; ${r.codebook}`);
    if (r.skipped.length) console.log(`${r.skipped.length} inputs skipped (listed above on stderr)`);
    console.log(`${r.seconds.toFixed(1)} s`);
  }
  if (o.strict && r.skipped.length) process.exitCode = 1;
}
