import * as mixt from '../lib';

describe('devices', () => {
  test('lists the CPU first, with its thread count', () => {
    const list = mixt.devices();
    expect(list[0].type).toBe('cpu');
    expect(list[0].threads).toBeGreaterThan(0);
    for (const d of list.slice(1)) expect(d.type).toBe('cuda');
  });

  test('auto chooses a device and says why', () => {
    const choice = mixt.chooseDevice('auto');
    const st = mixt.cudaStatus();
    if (st.usable) {
      expect(choice.device.toString()).toBe('cuda:0');
    } else {
      expect(choice.device.toString()).toBe('cpu');
      expect(choice.reason).toContain(st.reason);
    }
  });

  test('asking for CUDA where it is unusable throws ERR_NO_CUDA with the reason', () => {
    const st = mixt.cudaStatus();
    if (st.usable) {
      expect(() => mixt.device(`cuda:${st.devices.length}`)).toThrow(/does not exist/);
      return;
    }
    let err: unknown;
    try {
      mixt.device('cuda');
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(mixt.MixtError);
    expect((err as mixt.MixtError).code).toBe('ERR_NO_CUDA');
    expect((err as Error).message).toContain(st.reason);
  });

  test('bad specs are TypeErrors naming the argument', () => {
    expect(() => mixt.device('gpu')).toThrow(TypeError);
    expect(() => mixt.device('gpu')).toThrow(/argument "device" expected 'auto', 'cpu', 'cuda' or 'cuda:N', received "gpu"/);
    expect(() => mixt.device(3 as unknown as string)).toThrow(TypeError);
  });

  test('build info reports the backends compiled in', () => {
    const info = mixt.buildInfo();
    expect(info.napiVersion).toBe(8);
    expect(typeof info.cuda).toBe('boolean');
    if (info.cuda) expect(info.cudaArchs).toContain('sm_90a');
  });
});
