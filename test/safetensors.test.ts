import { decodeSafetensors, encodeSafetensors, StoredTensor } from '../lib/model/safetensors';
import { encodePng } from '../lib/cli/png';
import * as zlib from 'zlib';

describe('safetensors (written and read here)', () => {
  const t = (dtype: StoredTensor['dtype'], shape: number[], data: ArrayBufferView): StoredTensor => ({
    dtype, shape, data: new Uint8Array(data.buffer, data.byteOffset, data.byteLength),
  });

  test('round-trips dtypes, shapes, metadata; data starts 8-byte aligned', () => {
    const m = new Map<string, StoredTensor>([
      ['a', t('f32', [2, 3], new Float32Array([1, 2, 3, 4, 5, 6.5]))],
      ['b.text', t('i32', [4], new Int32Array([-1, 2, 3, 4]))],
      ['c', t('f64', [1], new Float64Array([Math.PI]))],
      ['d', t('bf16', [2], new Uint16Array([0x3f80, 0xc000]))],
    ]);
    const buf = encodeSafetensors(m, { format: 'mixt' });
    const n = Number(buf.readBigUInt64LE(0));
    expect(n % 8).toBe(0);
    const header = JSON.parse(buf.subarray(8, 8 + n).toString());
    expect(header.a).toEqual({ dtype: 'F32', shape: [2, 3], data_offsets: [0, 24] });
    expect(header.__metadata__).toEqual({ format: 'mixt' });
    const back = decodeSafetensors(buf);
    expect(back.metadata).toEqual({ format: 'mixt' });
    for (const [k, v] of m) {
      expect(back.tensors.get(k)!.dtype).toBe(v.dtype);
      expect(back.tensors.get(k)!.shape).toEqual(v.shape);
      expect(Buffer.from(back.tensors.get(k)!.data).equals(Buffer.from(v.data))).toBe(true);
    }
  });

  test('rejects truncated and inconsistent files with a reason', () => {
    const buf = encodeSafetensors(new Map([['a', t('f32', [4], new Float32Array(4))]]));
    expect(() => decodeSafetensors(buf.subarray(0, 4))).toThrow(/shorter than/);
    expect(() => decodeSafetensors(buf.subarray(0, buf.length - 4))).toThrow(/data offsets/);
    const bad = Buffer.from(buf);
    bad.writeBigUInt64LE(BigInt(1e9), 0);
    expect(() => decodeSafetensors(bad)).toThrow(/header length/);
  });
});

describe('png', () => {
  test('encodes RGB that decodes back (zlib round trip of the IDAT)', () => {
    const rgb = Uint8Array.from({ length: 3 * 4 * 2 }, (_, i) => (i * 37) % 256);
    const png = encodePng(4, 2, rgb);
    expect(png.subarray(1, 4).toString()).toBe('PNG');
    const idatAt = png.indexOf(Buffer.from('IDAT'));
    const len = png.readUInt32BE(idatAt - 4);
    const raw = zlib.inflateSync(png.subarray(idatAt + 4, idatAt + 4 + len));
    expect(raw.length).toBe(2 * (1 + 12));
    expect(Array.from(raw.subarray(1, 13))).toEqual(Array.from(rgb.subarray(0, 12)));
  });
});
