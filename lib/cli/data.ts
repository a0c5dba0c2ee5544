// `mixt data`: write the embedded corpus as JSONL, pack JSONL into the binary token file, inspect one.
import { Command } from 'commander';
import * as fs from 'fs';
import { shapesCorpus, unigramEntropy } from '../train/data/dataset';
import { SHAPES_VOCAB } from '../train/data/shapes';
import { packJsonl, readTokenFile, writeTokenFile } from '../train/data/tokenfile';
import { VocabSpec } from '../train/data/vocab';
import { intOption } from './common';

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
    .description('pack JSONL documents into a binary token file (.mixt)')
    .argument('<input>', 'JSONL: {"segments":[{"modality":"text","tokens":[...]}, ...]} or {"tokens":[...]} per line')
    .argument('<output>', 'token file to write')
    .option('--vocab <file>', 'vocabulary JSON ({size, modalities:[{name, range:[lo,hi)}]}); default: the shapes corpus\'s')
    .action((input: string, output: string, o: { vocab?: string }) => {
      const vocab: VocabSpec = o.vocab ? JSON.parse(fs.readFileSync(o.vocab, 'utf8')) : SHAPES_VOCAB;
      const ds = packJsonl(fs.readFileSync(input, 'utf8'), vocab, input);
      writeTokenFile(output, ds);
      console.log(`packed ${ds.docOffsets.length - 1} documents, ${ds.tokens.length} tokens into ${output}`);
    });
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
    });
  return data;
}
