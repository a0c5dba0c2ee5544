import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { fromDocuments, shapesCorpus, unigramEntropy } from '../lib/train/data/dataset';
import { PackedLoader } from '../lib/train/data/loader';
import {
  GRID, SHAPES, SHAPES_VOCAB, allPictures, caption, classifyShape, encodeDocument, isHeldOut, melody, render, tokenizeCaption,
} from '../lib/train/data/shapes';
import { decodeTokenFile, encodeTokenFile, packJsonl, readTokenFile, writeTokenFile } from '../lib/train/data/tokenfile';

describe('the embedded shapes corpus', () => {
  test('is deterministic and splits train/eval by held-out (shape, colour) pairs', () => {
    const a = shapesCorpus({ docs: 300, seed: 3 });
    const b = shapesCorpus({ docs: 300, seed: 3 });
    expect(Buffer.from(a.tokens.buffer).equals(Buffer.from(b.tokens.buffer))).toBe(true);
    expect(Buffer.from(shapesCorpus({ docs: 300, seed: 4 }).tokens.buffer).equals(Buffer.from(a.tokens.buffer))).toBe(false);
    const held = allPictures().filter(isHeldOut);
    expect(held.length).toBeGreaterThan(0);
    expect(held.length).toBeLessThan(allPictures().length / 5);
  });

  test('documents interleave three modalities in both directions', () => {
    const p = { shape: 'circle', color: 'red', background: 'black', size: 'big', place: 'center' } as const;
    const mods = (doc: number[]) => doc.map((t) => SHAPES_VOCAB.modalities.findIndex((m) => t >= m.range[0] && t < m.range[1]));
    const c2i = mods(encodeDocument(p, 'caption->image'));
    const i2c = mods(encodeDocument(p, 'image->caption'));
    expect(c2i.filter((m) => m === 1).length).toBe(GRID * GRID);
    expect(c2i.indexOf(1)).toBeGreaterThan(c2i.indexOf(0));
    expect(i2c.lastIndexOf(0)).toBeGreaterThan(i2c.indexOf(1));
    expect(mods(encodeDocument(p, 'caption->melody')).filter((m) => m === 2).length).toBe(melody(p).length);
  });

  test('every picture is recognised by the shape classifier used to score samples', () => {
    for (const p of allPictures()) expect(classifyShape(render(p)).shape).toBe(p.shape);
    expect(SHAPES.length).toBe(8);
  });

  test('captions tokenize, unknown words are an error naming the word', () => {
    const p = allPictures()[17];
    expect(tokenizeCaption(caption(p).join(' ')).length).toBe(caption(p).length);
    expect(() => tokenizeCaption('a purple circle')).toThrow(/unknown word "purple"/);
  });

  test('unigram entropy per modality is positive and below log(vocabulary)', () => {
    const h = unigramEntropy(shapesCorpus({ docs: 500 }));
    expect(h.length).toBe(3);
    SHAPES_VOCAB.modalities.forEach((m, i) => {
      expect(h[i]).toBeGreaterThan(0.3);
      expect(h[i]).toBeLessThan(Math.log(m.range[1] - m.range[0]));
    });
  });
});

describe('token files', () => {
  const ds = shapesCorpus({ docs: 50, seed: 9 });

  test('round-trip through the binary format', () => {
    const back = decodeTokenFile(encodeTokenFile(ds));
    expect(Array.from(back.tokens)).toEqual(Array.from(ds.tokens));
    expect(Array.from(back.modality)).toEqual(Array.from(ds.modality));
    expect(Array.from(back.docOffsets)).toEqual(Array.from(ds.docOffsets));
    expect(back.vocab).toEqual(ds.vocab);
  });

  test('writes atomically and reads back from disk', () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'mixt-data-'));
    const f = path.join(dir, 'x.mixt');
    writeTokenFile(f, ds);
    expect(readTokenFile(f).tokens.length).toBe(ds.tokens.length);
    expect(fs.readdirSync(dir)).toEqual(['x.mixt']);
  });

  test('corrupt files are clear errors', () => {
    const buf = encodeTokenFile(ds);
    expect(() => decodeTokenFile(Buffer.from('NOTMIXT0' + 'x'.repeat(40)))).toThrow(/bad magic/);
    const v2 = Buffer.from(buf);
    v2.writeUInt32LE(9, 8);
    expect(() => decodeTokenFile(v2)).toThrow(/version 9/);
    expect(() => decodeTokenFile(buf.subarray(0, buf.length - 3))).toThrow(/size/);
    const badTok = Buffer.from(buf);
    const hlen = badTok.readUInt32LE(12);
    badTok.writeInt32LE(9999, (16 + hlen + 7) & ~7);
    expect(() => decodeTokenFile(badTok)).toThrow(/outside the vocabulary/);
  });

  test('JSONL with segments or plain tokens packs, and bad lines name the line', () => {
    const img = SHAPES_VOCAB.modalities[1].range[0];
    const text = [
      JSON.stringify({ segments: [{ modality: 'text', tokens: [1, 7] }, { modality: 'image', tokens: [img, img + 1] }] }),
      JSON.stringify({ tokens: [1, 2] }),
      '',
    ].join('\n');
    const p = packJsonl(text, SHAPES_VOCAB);
    expect(Array.from(p.docOffsets)).toEqual([0, 4, 6]);
    expect(Array.from(p.modality)).toEqual([0, 0, 1, 1, 0, 0]);
    expect(() => packJsonl('{"segments":[{"modality":"image","tokens":[1]}]}', SHAPES_VOCAB, 'f.jsonl')).toThrow(/f.jsonl:1: token 1 is outside modality image/);
    expect(() => packJsonl('{"segments":[{"modality":"video","tokens":[1]}]}', SHAPES_VOCAB)).toThrow(/unknown modality "video"/);
  });
});

describe('packed loader', () => {
  test('packs whole documents, targets stay inside documents, padding has no targets', () => {
    const ds = fromDocuments(SHAPES_VOCAB, [[1, 10, 11, 2], [1, 12, 2], [1, 13, 14, 15, 16, 2], [1, 2]]);
    const L = new PackedLoader(ds, 8, 2, 5);
    const b = L.next();
    expect(b.tokens.length).toBe(16);
    for (let i = 0; i < 16; i++) {
      if (b.targets[i] >= 0) {
        expect(b.docIds[i + 1]).toBe(b.docIds[i]);
        expect(b.targets[i]).toBe(b.tokens[i + 1]);
        expect(b.positions[i + 1]).toBe(b.positions[i] + 1);
      }
      if (i > 0) expect(b.docIds[i]).toBeGreaterThanOrEqual(b.docIds[i - 1]);
    }
    const counted = b.targetCounts.reduce((a, c) => a + c, 0);
    expect(counted).toBe(Array.from(b.targets).filter((t) => t >= 0).length);
  });

  test('state round-trips: a restored loader yields the same batches (resume)', () => {
    const ds = shapesCorpus({ docs: 200 });
    const a = new PackedLoader(ds, 64, 3, 11);
    for (let i = 0; i < 7; i++) a.next();
    const st = a.state;
    const x = a.next();
    const b = new PackedLoader(ds, 64, 3, 11);
    b.setState(st);
    expect(Array.from(b.next().tokens)).toEqual(Array.from(x.tokens));
  });

  test('epochs reshuffle deterministically', () => {
    const ds = shapesCorpus({ docs: 20 });
    const a = new PackedLoader(ds, 128, 2, 1), b = new PackedLoader(ds, 128, 2, 1);
    for (let i = 0; i < 30; i++) expect(Array.from(a.next().tokens)).toEqual(Array.from(b.next().tokens));
    expect(a.state.epoch).toBeGreaterThan(0);
  });
});
