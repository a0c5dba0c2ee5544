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
    expect(() => packJsonl('{"segments":[{"modality":"image","tokens":[1]}]}', SHAPES_VOCAB, 'f.jsonl')).toThrow(/f.jsonl:1: segments\[0\]: field "tokens": 1 is outside modality image/);
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

describe('token data inputs: sizes, linear packing, messages naming the line and field', () => {
  const header = (h: object) => {
    const json = Buffer.from(JSON.stringify(h));
    const buf = Buffer.alloc(64 + json.length);
    buf.write('MIXTTOK\0', 'latin1');
    buf.writeUInt32LE(1, 8);
    buf.writeUInt32LE(json.length, 12);
    json.copy(buf, 16);
    return buf;
  };

  test('a header claiming sizes the file cannot hold fails at once, before allocating', () => {
    const t0 = Date.now();
    expect(() => decodeTokenFile(header({ vocab: { size: 3e9, modalities: [{ name: 'text', range: [0, 3e9] }] }, tokens: 10, documents: 1 }), 'h.mixt')).toThrow(
      /h\.mixt: header field "vocab": field "size" must be an integer in \[2, 2147483647\], received 3000000000/,
    );
    expect(() => decodeTokenFile(header({ vocab: SHAPES_VOCAB, tokens: 1e9, documents: 1 }), 'h.mixt')).toThrow(/declares 1000000000 tokens, more than a file of \d+ bytes can hold/);
    expect(() => decodeTokenFile(header({ vocab: null, tokens: 1, documents: 1 }), 'h.mixt')).toThrow(/header field "vocab": field "vocab" must be an object/);
    expect(() => decodeTokenFile(header({ vocab: { size: 2e9, modalities: [{ name: 'a', range: [0, 1e9] }, { name: 'b', range: [1e9, 2e9] }] }, tokens: 0, documents: 0 }), 'h.mixt')).toThrow(/size/);
    expect(Date.now() - t0).toBeLessThan(2000);
  });

  test('packing is linear in the number of segments (100k segments in one document)', () => {
    const segs = Array.from({ length: 100000 }, (_, i) => ({ modality: 'text', tokens: [i % 10] }));
    const t0 = Date.now();
    const ds = packJsonl(JSON.stringify({ segments: segs }) + '\n' + JSON.stringify({ tokens: [1, 2] }), SHAPES_VOCAB, 'big.jsonl');
    expect(ds.tokens.length).toBe(100002);
    expect(Array.from(ds.tokens.subarray(0, 12))).toEqual([0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 0, 1]);
    expect(Date.now() - t0).toBeLessThan(10000); // quadratic concatenation took > 90 s
  });

  test('bad JSONL lines name the file, the line and the field', () => {
    const pack = (line: string) => () => packJsonl(`{"tokens":[1]}\n${line}`, SHAPES_VOCAB, 'in.jsonl');
    expect(pack('{"segments":[null]}')).toThrow(/in\.jsonl:2: segments\[0\]: expected an object \{"modality", "tokens"\}, received null/);
    expect(pack('{"segments":[{"modality":"text","tokens":5}]}')).toThrow(/in\.jsonl:2: segments\[0\]: field "tokens" must be an array of token ids, received 5/);
    expect(pack('{"segments":[{"modality":"smell","tokens":[1]}]}')).toThrow(/in\.jsonl:2: segments\[0\]: field "modality": unknown modality "smell" \(known: text, image, tone\)/);
    expect(pack('{"segments":{}}')).toThrow(/in\.jsonl:2: field "segments" must be an array/);
    expect(pack('null')).toThrow(/in\.jsonl:2: expected a JSON object/);
    expect(pack('{"tokens":[1e9]}')).toThrow(/in\.jsonl:2: field "tokens": 1000000000 is outside the vocabulary/);
    expect(pack('{nope')).toThrow(/in\.jsonl:2: not JSON/);
    expect(() => packJsonl('{"tokens":[1]}', { size: 10, modalities: null } as never, 'in.jsonl')).toThrow(/in\.jsonl: vocabulary: field "modalities" must be an array/);
  });

  test('version 2 files round-trip image spans and continuous patches', () => {
    const base = shapesCorpus({ docs: 3, seed: 1 });
    const spans = Float64Array.from([2, 5, 10, 12]);
    const patches = Float32Array.from({ length: 5 * 3 }, (_, i) => Math.sin(i));
    const back = decodeTokenFile(encodeTokenFile({ ...base, spans, patches, patchDim: 3 }));
    expect(Array.from(back.spans!)).toEqual([2, 5, 10, 12]);
    expect(Array.from(back.patches!)).toEqual(Array.from(patches));
    expect(Array.from(back.patchIndex!.subarray(0, 13))).toEqual([-1, -1, 0, 1, 2, -1, -1, -1, -1, -1, 3, 4, -1]);
    expect(() => decodeTokenFile(encodeTokenFile({ ...base, spans: Float64Array.from([5, 2]) }))).toThrow(/image span 0 \[5, 2\)/);
  });
});

describe('the loader and image spans', () => {
  test('two continuous pictures in one document are two spans (neither attends into the other)', () => {
    // <bos> [patch patch] <eoi> text [patch patch] <eos>: two runs of patch tokens
    const tokens = Int32Array.from([1, 40, 40, 4, 7, 40, 40, 2]);
    const ds = {
      vocab: SHAPES_VOCAB, tokens, modality: Uint8Array.from(tokens, (t) => (t >= 40 ? 1 : 0)), docOffsets: Float64Array.from([0, 8]),
      patchIndex: Int32Array.from([-1, 0, 1, -1, -1, 2, 3, -1]), patches: new Float32Array(4 * 12).fill(0.5), patchDim: 12,
    };
    const b = new PackedLoader(ds, 8, 1, 1).next();
    expect(Array.from(b.spanIds!)).toEqual([-1, 0, 0, -1, -1, 1, 1, -1]);
  });
});
