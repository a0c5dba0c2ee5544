// The sm_90a GEMM's index math (native/cuda/hopper_gemm_plan.h, wgmma_layout.h) run on the host model of
// TMA and wgmma (native/emu/wgmma_emu.h): parity with a float64 GEMM for every problem kind and tile
// shape, and the tile scheduler's exactly-once walk. Needs no GPU: the driver is compiled with the host
// C++ compiler in a few seconds; where there is none the test says so and is skipped.
import { execFileSync, spawnSync } from 'child_process';
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';

const root = path.join(__dirname, '..');
const cxx = process.env.CXX ?? 'g++';
const haveCxx = spawnSync(cxx, ['--version'], { stdio: 'ignore' }).status === 0;
const maybe = haveCxx ? describe : describe.skip;
if (!haveCxx) console.warn(`hopper emulator tests skipped: no host C++ compiler (${cxx})`);

maybe('Hopper GEMM plan on the wgmma/TMA host emulator', () => {
  let lines: string[] = [];
  let status = -1;
  beforeAll(() => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'mixt-emu-'));
    const exe = path.join(dir, 'hopper_gemm_emu');
    try {
      execFileSync(cxx, ['-std=c++17', '-O2', '-Wall', '-Werror', `-I${path.join(root, 'native')}`, path.join(root, 'native/emu/hopper_gemm_emu.cpp'), '-o', exe], {
        stdio: 'pipe',
      });
      const r = spawnSync(exe, [], { encoding: 'utf8' });
      lines = r.stdout.trim().split('\n');
      status = r.status ?? -1;
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  }, 120000);

  const line = (re: RegExp) => lines.filter((l) => re.test(l));

  it('reproduces a float64 GEMM for every problem kind and both tile widths', () => {
    for (const kind of ['forward', 'dX', 'matmul transB', 'matmul \\(plain, MN-major', 'dW', 'matmul transA'])
      for (const bn of [128, 256]) {
        const hit = line(new RegExp(`^(PASS|FAIL) ${kind}.* BN=${bn} `));
        expect(hit).toHaveLength(1);
        expect(hit[0]).toMatch(/^PASS/);
      }
  });

  it('tells a wrong operand layout apart (control)', () => {
    expect(line(/^PASS control: /)).toHaveLength(1);
  });

  it('walks every tile of every group exactly once, in band order', () => {
    expect(line(/^PASS scheduler 128x128/)).toHaveLength(1);
    expect(line(/^PASS scheduler 128x256/)).toHaveLength(1);
    expect(line(/^PASS band order/)).toHaveLength(1);
  });

  it('maps accumulator pairs to adjacent columns and checks register splits', () => {
    expect(line(/^PASS epilogue pairs/)).toHaveLength(1);
    expect(line(/^PASS register splits/)).toHaveLength(1);
  });

  it('fails nothing', () => {
    expect(line(/^FAIL/)).toEqual([]);
    expect(status).toBe(0);
  });
});
