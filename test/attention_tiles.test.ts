// The attention kernels' tile logic (native/kernels/attention_tiles.h: per-block mask classes, the
// key/query loop bounds) and a host emulation of their online softmax and backward in the kernels'
// tile order, checked against element-wise visibility and the CPU reference; and the Hopper forward's
// index math (native/cuda/hopper_attention_plan.h) on the host model of TMA and wgmma
// (native/emu/wgmma_emu.h). Compiled with g++ from test/native/attention_tiles.cpp (a few seconds):
// this runs without a GPU.
import { spawnSync } from 'child_process';
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';

const root = path.join(__dirname, '..');
let exe = '';

function run(...args: string[]) {
  const r = spawnSync(exe, args, { encoding: 'utf8', timeout: 60000 });
  return { status: r.status, out: `${r.stdout}${r.stderr}` };
}

beforeAll(() => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'mixt-attn-tiles-'));
  exe = path.join(dir, 'attention_tiles');
  const sources = ['test/native/attention_tiles.cpp', 'native/cpu/attention.cpp', 'native/cpu/parallel.cpp'].map((s) => path.join(root, s));
  const cc = spawnSync('g++', ['-std=c++17', '-O2', '-I', path.join(root, 'native'), ...sources, '-o', exe, '-lpthread'], { encoding: 'utf8' });
  if (cc.status !== 0) throw new Error(`g++ could not build the attention tile driver: ${cc.error ?? ''}${cc.stderr}`);
}, 120000);

describe('attention tiles (host)', () => {
  test('tile classes are sound on random masks of every kind: empty has no visible pair, full has all; loop bounds miss none', () => {
    for (const seed of ['1', '2']) {
      const r = run('classes', seed, '300');
      expect(r.out).toContain('failures 0');
      expect(r.status).toBe(0);
    }
  });

  test.each(['nospan', 'onedoc', 'nodiag'])('the checker catches a wrong classifier or bound (%s)', (name) => {
    const r = run('mutant', name, '1', '200');
    expect(r.out).toMatch(/FAIL/);
    expect(r.status).toBe(1);
  });

  test('forward: online softmax in the kernels tile order matches the CPU reference (every mask kind, hd 64/128, GQA 1-4, bf16 and f32, mma and Hopper tiles)', () => {
    const r = run('forward', '7', '48');
    expect(r.out).toContain('failures 0');
    expect(r.status).toBe(0);
  });

  test('Hopper forward: its shared layout, wgmma descriptors (Q/K K-major, V MN-major) and P-in-registers A fragments give S = QK^T and O = PV on the TMA/wgmma model', () => {
    const r = run('hopper', '3', '16');
    expect(r.out).toContain('failures 0');
    expect(r.status).toBe(0);
  });

  test('backward: dQ by query blocks and dK/dV by key blocks in fixed tile order match the CPU reference', () => {
    const r = run('backward', '11', '24');
    expect(r.out).toContain('failures 0');
    expect(r.status).toBe(0);
  });
});
