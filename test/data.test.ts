import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { drawKind, fromDocuments, shapesCorpus, unigramEntropy } from '../lib/train/data/dataset';
import { PackedLoader } from '../lib/train/data/loader';
import {
  CAPTION_GRAMMAR, COLORS, DEFAULT_CAPTION, GRID, HELD_OUT_PAIRS, SHAPES, SHAPES_VOCAB, TONES, allPictures, caption, encodeDocument, isHeldOut, melody,
  nearestPicture, parseCaption, render, tokenizeCaption,
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

  test('every picture is its own nearest picture (the scorer tells all 1120 apart), and a changed cell keeps it so', () => {
    const pics = allPictures();
    expect(pics.length).toBe(1120);
    for (const p of pics) {
      const grid = render(p);
      const near = nearestPicture(grid);
      expect(near).toEqual({ picture: p, agreement: GRID * GRID });
      grid[(pics.indexOf(p) * 7) % grid.length] = 8; // one white cell
      expect(caption(nearestPicture(grid).picture)).toEqual(caption(p));
    }
    expect(SHAPES.length).toBe(8);
  });

  test('captions tokenize, unknown words are an error naming the word', () => {
    const p = allPictures()[17];
    expect(tokenizeCaption(caption(p).join(' ')).length).toBe(caption(p).length);
    expect(() => tokenizeCaption('a purple circle')).toThrow(/unknown word "purple"/);
  });

  test('a caption parses to its picture; empty captions and captions outside the grammar name the grammar and every slot\'s words', () => {
    for (const p of allPictures()) expect(parseCaption(`  ${caption(p).join('  ').toUpperCase()} `)).toEqual(p);
    expect(caption(parseCaption(DEFAULT_CAPTION)).join(' ')).toBe(DEFAULT_CAPTION);
    const grammar = /captions follow "a <size> <colour> <shape> at the <place> on <background>" \(<size>: small \| big; <colour>: red \| green .*<place>: top left \| top right .*<background>: black \| gray\)/;
    for (const bad of ['', '   ', 'a red circle', 'a big red circle at the center', 'big red circle at the center on black', 'a big circle red at the center on black', 'a big red circle at the center on black please']) {
      expect(() => parseCaption(bad)).toThrow(RangeError);
      expect(() => parseCaption(bad)).toThrow(grammar);
    }
    expect(() => parseCaption('')).toThrow(/the caption is empty/);
    expect(() => parseCaption('a big purple circle at the center on black')).toThrow(/unknown word "purple"/);
    expect(() => parseCaption('a big red circle at the middle on black')).toThrow(/unknown word "middle"/);
    expect(CAPTION_GRAMMAR).toContain('<shape>');
  });

  test('held-out pairs are named; each of their shapes and colours is seen in training with other partners', () => {
    const held = allPictures().filter(isHeldOut);
    const pairs = [...new Set(held.map((p) => `${p.color} ${p.shape}`))];
    expect(HELD_OUT_PAIRS.split(', ').sort()).toEqual(pairs.sort());
    const train = allPictures().filter((p) => !isHeldOut(p));
    for (const p of held) {
      expect(train.some((q) => q.shape === p.shape)).toBe(true);
      expect(train.some((q) => q.color === p.color)).toBe(true);
    }
  });

  test('each note of a melody depends on one attribute: a held-out pair\'s melody is made of parts heard in training', () => {
    const train = allPictures().filter((p) => !isHeldOut(p));
    for (const p of allPictures()) {
      const m = melody(p);
      expect(m.every((n) => Number.isInteger(n) && n >= 0 && n <= TONES)).toBe(true);
      // the same shape and size with another colour: the same notes up to the closing one
      const otherColour = train.find((q) => q.shape === p.shape && q.size === p.size && q.color !== p.color)!;
      expect(melody(otherColour).slice(0, -1)).toEqual(m.slice(0, -1));
      // the same colour with another shape: the same closing note
      const otherShape = train.find((q) => q.color === p.color && q.shape !== p.shape)!;
      expect(melody(otherShape)[melody(otherShape).length - 1]).toBe(m[m.length - 1]);
    }
    // and the melody tells shape, size and colour apart
    const keys = new Set(allPictures().map((p) => melody(p).join(',')));
    expect(keys.size).toBe(SHAPES.length * COLORS.length * 2);
  });

  test('unigram entropy per modality is positive and below log(vocabulary); against another split it is a cross-entropy, never below', () => {
    const train = shapesCorpus({ docs: 500 }), held = shapesCorpus({ docs: 300, split: 'eval' });
    const h = unigramEntropy(train);
    expect(h.length).toBe(3);
    SHAPES_VOCAB.modalities.forEach((m, i) => {
      expect(h[i]).toBeGreaterThan(0.3);
      expect(h[i]).toBeLessThan(Math.log(m.range[1] - m.range[0]));
    });
    const own = unigramEntropy(held), cross = unigramEntropy(held, train);
    own.forEach((x, i) => expect(cross[i]).toBeGreaterThanOrEqual(x - 1e-12)); // Gibbs' inequality
    expect(cross[1]).toBeGreaterThan(own[1] + 0.05); // held-out pictures use colours in other proportions
    // by hand: tokens [1, 5, 5, 6] in one document -> targets 5, 5, 6 (text)
    const ds = fromDocuments(SHAPES_VOCAB, [[1, 5, 5, 6]]);
    expect(unigramEntropy(ds)[0]).toBeCloseTo(-(2 / 3) * Math.log(2 / 3) - (1 / 3) * Math.log(1 / 3), 12);
    expect(unigramEntropy(fromDocuments(SHAPES_VOCAB, [[1, 5, 7]]), ds)[0]).toBeCloseTo(-(Math.log(2 / 3) + Math.log(0.5 / 3)) / 2, 12);
  });

  test('document kinds are drawn by weight', () => {
    const kinds: [ReturnType<typeof drawKind>, number][] = [['caption->image', 3], ['image->caption', 1]];
    expect(drawKind(kinds, 0)).toBe('caption->image');
    expect(drawKind(kinds, 0.74)).toBe('caption->image');
    expect(drawKind(kinds, 0.76)).toBe('image->caption');
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

describe('the sample scorer', () => {
  test('noise scores at chance on every attribute; the asked picture itself scores 100%', async () => {
    const { ATTRIBUTES, CHANCE, scoreSplit } = await import('../lib/cli/score');
    const { hostRandom } = await import('../lib/core/random');
    const r = hostRandom(3);
    const noise = await scoreSplit(async () => Uint8Array.from({ length: GRID * GRID }, () => Math.floor(r() * 9)), 1000, false, 1);
    for (const a of ATTRIBUTES) expect(Math.abs(noise.rates[a] - CHANCE[a])).toBeLessThan(0.05);
    expect(noise.exact).toBe(0);
    const words = new Map(allPictures().map((p) => [tokenizeCaption(caption(p).join(' ')).join(), p]));
    const perfect = await scoreSplit(async (w) => render(words.get(w.join())!), 50, true, 2);
    for (const a of ATTRIBUTES) expect(perfect.rates[a]).toBe(1);
    expect(perfect.exact).toBe(1);
  });
});
