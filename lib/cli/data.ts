// `mixt data`: write the embedded corpus as JSONL, pack JSONL into the binary token file, inspect one.
import { Command } from 'commander';
import * as fs from 'fs';
import { shapesCorpus, unigramEntropy } from '../train/data/dataset';
import { SHAPES_VOCAB } from '../train/data/shapes';
import { readTokenFile } from '../train/data/tokenfile';
import { PACK_DEFAULTS } from '../train/data/pack';
import { intOption, numberOption } from './common';
import { PackCliOptions, runPack } from './pack';

export function dataCommand(): Command {
  const data = new Command('data').description('token data: generate, pack, inspect');
  data
    .command('generate')
    .description('write the embedded shapes corpus as JSONL (and its vocabulary as JSON)')
    .requiredOption('--out <file>', 'JSONL output')
    .option('--vocab <file>', 'vocabulary JSON output')
    .option('--docs <n>', 'documents', intOption('--docs'), 20000)
    .option('--split <split>', "'train' or 'eval' (held-out shape/colour pairs)", 'train')
    .option('--seed <n>', 'seed', intOption('--seed', 0), 1)
    .action((o: { out: string; vocab?: string; docs: number; split: 'train' | 'eval'; seed: number }) => {
      const ds = shapesCorpus({ docs: o.docs, seed: o.seed, split: o.split });
      const lines: string[] = [];
      for (let d = 0; d + 1 < ds.docOffsets.length; d++) {
        const segs: { modality: string; tokens: number[] }[] = [];
        for (let i = ds.docOffsets[d]; i < ds.docOffsets[d + 1]; i++) {
          const m = ds.vocab.modalities[ds.modality[i]].name;
          if (!segs.length || segs[segs.length - 1].modality !== m) segs.push({ modality: m, tokens: [] });
          segs[segs.length - 1].tokens.push(ds.tokens[i]);
        }
        lines.push(JSON.stringify({ segments: segs }));
      }
      fs.writeFileSync(o.out, lines.join('\n') + '\n');
      if (o.vocab) fs.writeFileSync(o.vocab, JSON.stringify(SHAPES_VOCAB, null, 1));
      console.log(`wrote ${lines.length} documents to ${o.out}${o.vocab ? ` and the vocabulary to ${o.vocab}` : ''}`);
    });
  data
    .command('pack')
    .description('pack documents into token files (.mixt): JSONL documents, captioned images (a folder, a CSV/JSONL of file, caption, or an ImageFolder layout), plain text files')
    .argument('<inputs...>', 'files or folders; with no --out, a last argument ending in .mixt is the output')
    .option('-o, --out <file>', 'token file to write (training documents)')
    .option('--eval-out <file>', 'token file for the held-out documents')
    .option('--held-out <fraction>', 'hold out this fraction of documents (a seeded hash of each source: deterministic)', numberOption('--held-out'))
    .option('--held-out-from <inputs...>', 'hold out every document of these inputs')
    .option('--tokenizer <spec>', "'bytes' (default), 'tiktoken:<cl100k_base|o200k_base|p50k_base|r50k_base|gpt2>', or a Hugging Face tokenizer.json", 'bytes')
    .option('--vocab <file>', 'JSONL of token ids against this vocabulary JSON ({size, modalities:[{name, range:[lo,hi)}]}) instead of a tokenizer')
    .option('--objective <kind>', "pictures as codebook tokens ('ar') or continuous patches ('transfusion')", 'ar')
    .option('--image-size <n>', 'pictures are resized to n x n pixels', intOption('--image-size'), PACK_DEFAULTS.imageSize)
    .option('--patch <n>', 'patch side in pixels (one token per patch)', intOption('--patch'), PACK_DEFAULTS.patch)
    .option('--codebook <n>', "'ar': codebook entries learned by k-means over training patches", intOption('--codebook', 2), PACK_DEFAULTS.codebook)
    .option('--directions <which>', "captioned images as 'both' documents, 'caption-image' or 'image-caption'", PACK_DEFAULTS.directions)
    .option('--max-chars <n>', 'plain text: a document is a paragraph, cut near n characters', intOption('--max-chars'), PACK_DEFAULTS.maxChars)
    .option('--threads <n>', 'image decoding threads (0: the main thread)', intOption('--threads', 0))
    .option('--seed <n>', 'seed of the split and the codebook', intOption('--seed', 0), PACK_DEFAULTS.seed)
    .option('--strict', 'exit with status 1 when any input was skipped (the files are still written)')
    .option('--json', 'a JSON summary on stdout')
    .action(async (inputs: string[], o: PackCliOptions) => runPack(inputs, o));
  data
    .command('info')
    .description('summarise a token file')
    .argument('<file>')
    .action((file: string) => {
      const ds = readTokenFile(file);
      const h = unigramEntropy(ds);
      const counts = ds.vocab.modalities.map((_, m) => ds.modality.reduce((a, x) => a + (x === m ? 1 : 0), 0));
      console.log(`${file}: ${ds.docOffsets.length - 1} documents, ${ds.tokens.length} tokens, vocabulary ${ds.vocab.size}`);
      ds.vocab.modalities.forEach((m, i) => console.log(`  ${m.name}: ids [${m.range[0]}, ${m.range[1]}), ${counts[i]} tokens, unigram entropy ${h[i].toFixed(3)} nats`));
      const c = ds.vocab.codec;
      if (c) {
        const img = c.image ? (c.image.kind === 'kmeans' ? `, pictures ${c.image.size}x${c.image.size} as ${c.image.codebook.length / (3 * c.image.patch ** 2)} codebook patches of ${c.image.patch}x${c.image.patch}` : `, pictures ${c.image.size}x${c.image.size} as continuous ${c.image.patch}x${c.image.patch} patches`) : '';
        console.log(`  codec: tokenizer ${c.text.kind === 'tiktoken' ? `tiktoken ${c.text.encoding}` : c.text.kind === 'hf' ? `tokenizer.json${c.text.source ? ` (${c.text.source})` : ''}` : 'bytes'}${img}`);
      }
      if (ds.spans) console.log(`  ${ds.spans.length / 2} image spans${ds.patches ? `, ${ds.patches.length / ds.patchDim!} continuous patches of ${ds.patchDim} values` : ''}`);
    });
  return data;
}
