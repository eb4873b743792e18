import { ByteReader, ByteWriter, decodeVmsd, describeDevice, encodeVmsd, VmstateError } from '@e2k-migrate/vmstate';
import { describe, expect, it } from 'vitest';
import { e2kCpuVmsd, vmstateE2kCpu } from './cpu.vmstate.js';
import { cpuConfig, type E2kCpuState, resetCpuState } from './state.js';

const hex = (s: string) =>
  Uint8Array.from((s.replace(/#[^\n]*/g, '').match(/[0-9a-f]{2}/gi) ?? []).map((b) => parseInt(b, 16)));
const zeros = (n: number) => '00'.repeat(n);

function encode(s: E2kCpuState): Uint8Array {
  return encodeVmsd(vmstateE2kCpu, s, new ByteWriter()).written();
}

function decode(bytes: Uint8Array, dest = resetCpuState(), opts: Parameters<typeof e2kCpuVmsd>[0] = {}): E2kCpuState {
  return decodeVmsd(e2kCpuVmsd({ dest: dest.cfg, ...opts }), new ByteReader(bytes), 1, dest);
}

/** Every subsection's `needed` true: v5 linux-user CPU with upper halves, AAU, descriptors, DAM. */
function fullState(): E2kCpuState {
  const s = resetCpuState(cpuConfig({ model: 'e8c2', mode: 1 }));
  s.rf_hi[3] = 0x1234_5678_9abc_def0n;
  s.aau.aasr = 3 << 7; // lds = ACTIVE
  s.aau.aasti[2] = 0x40;
  s.aau.aad[5] = { lo: 0x0600_0000_0000_1000n, hi: 0x100n << 32n };
  s.aau.apb_l[0] = { pi: 1n << 25n, cdi: 8, ldi: 2 };
  s.cud = { lo: 0x1800_0000_0040_0000n, hi: 0x1000n << 32n };
  s.osr0 = 0xdeadn;
  s.core_mode = 2n;
  s.dam[7] = 0x55n;
  s.lock_val = [1n, 2n];
  s.pcsp_hi = (0xa1_0000n << 32n) | 32n; // the initial linux-user frame
  s.is_bp = 1;
  s.elf_flags = 0x9;
  return s;
}

describe('e2k-cpu VMState', () => {
  it('encodes a reset e8c CPU to the golden bytes, field by field', () => {
    const golden = hex(`
      04                              # cfg.isa = 4 (e8c)
      65 38 63 ${zeros(29)}           # cfg.model = "e8c", NUL-padded to 32
      00 00 00 00 00 00 00 07         # cfg.idr = 7 (IDR.mdl E8C)
      40                              # cfg.long_bits = 64
      00                              # cfg.mode = system
      00                              # cfg.tags = false
      00 e0                           # cfg.nr = 224
      20                              # cfg.gr = 32
      00                              # cfg.force_save_alc_dst = false
      ${zeros(8)}                     # ip
      ${zeros(8)}                     # nip
      ${zeros(24)}                    # ctpr[0..2]
      00 00 00 01                     # psr = PM
      00 00 00 81                     # upsr = NMIE | FE
      00 00 00 00                     # cuir
      00 00 00 00                     # wd_base
      00 00 00 10                     # wd_size = 16
      00 00 00 08                     # wd_psize = 8
      00                              # wd_fx
      00                              # wdbl
      00 00 00 08                     # bn_base = 8
      00 00 00 08                     # bn_size = 8
      00 00 00 00                     # bn_cur
      00 00 00 01                     # bp_size = 1
      00 00 00 00                     # bp_cur
      00 00 00 00                     # bgr
      ${zeros(8)}                     # pregs
      ${zeros(32)}                    # lsr, lsr_lcnt, ilcr, ilcr_lcnt
      ${zeros(24)}                    # sbr, usd_lo, usd_hi
      18 00 00 00 00 81 00 00         # psp_lo: base 0x810000 | readable (59) | writable (60)
      00 10 00 00 00 00 00 00         # psp_hi: size 0x100000, index 0
      ${zeros(8)}                     # psp_tagbase
      18 00 00 00 00 91 00 00         # pcsp_lo: base 0x910000 | R | W
      00 a1 00 00 00 00 00 00         # pcsp_hi: size 0xa10000
      ${zeros(8)}                     # pcsp_tagbase
      00 00 1f 80                     # pfpfr: all masked, round to nearest
      00 00 03 7f                     # fpcr: all masked, bit 6, pc = extended
      00 00 00 00                     # fpsr
      ${zeros(256 * 8)}               # rf_lo[256]
      ${zeros(256)}                   # rf_tag[256]
                                      # no subsection is needed
    `);
    const bytes = encode(resetCpuState());
    expect(bytes.length).toBe(2566);
    expect(Buffer.from(bytes).toString('hex')).toBe(Buffer.from(golden).toString('hex'));
    expect(decode(bytes)).toEqual(resetCpuState());
  });

  it('round-trips with every subsection present, in declaration order', () => {
    const s = fullState();
    const bytes = encode(s);
    const text = Buffer.from(bytes).toString('latin1');
    const at = ['rf-hi', 'aau', 'sys', 'dam', 'user'].map((n) =>
      text.indexOf(`\x05${String.fromCharCode(8 + n.length)}e2k-cpu/${n}\x00\x00\x00\x01`),
    );
    expect(at.every((i) => i > 0)).toBe(true);
    expect([...at].sort((a, b) => a - b)).toEqual(at);
    const back = decode(bytes, resetCpuState(s.cfg));
    expect(back).toEqual(s);
    const desc = describeDevice('e2k-cpu', 0, vmstateE2kCpu, s);
    expect(desc.subsections?.map((x) => x.vmsd_name)).toEqual([
      'e2k-cpu/rf-hi',
      'e2k-cpu/aau',
      'e2k-cpu/sys',
      'e2k-cpu/dam',
      'e2k-cpu/user',
    ]);
  });

  it('leaves absent subsections at the destination reset values', () => {
    const s = resetCpuState();
    s.rf_lo[5] = 42n;
    const bytes = encode(s);
    expect(Buffer.from(bytes).includes('e2k-cpu/')).toBe(false);
    const dest = resetCpuState();
    const back = decode(bytes, dest);
    expect(back.rf_lo[5]).toBe(42n);
    expect(back.aau.aaincr[0]).toBe(1);
    expect(back.rf_hi.every((v) => v === 0n)).toBe(true);
  });

  it('each subsection alone round-trips and the others stay absent', () => {
    const full = fullState();
    const pick: Record<string, (s: E2kCpuState) => void> = {
      'rf-hi': (s) => {
        s.rf_hi = [...full.rf_hi];
      },
      aau: (s) => {
        s.aau = structuredClone(full.aau);
      },
      sys: (s) => {
        s.cud = { ...full.cud };
        s.osr0 = full.osr0;
      },
      dam: (s) => {
        s.dam = [...full.dam];
        s.lock_val = [...full.lock_val];
      },
    };
    for (const [name, apply] of Object.entries(pick)) {
      const s = resetCpuState(cpuConfig({ model: 'e8c2' }));
      apply(s);
      const text = Buffer.from(encode(s)).toString('latin1');
      const present = ['rf-hi', 'aau', 'sys', 'dam', 'user'].filter((n) => text.includes(`e2k-cpu/${n}`));
      expect(present).toEqual([name]);
      expect(decode(encode(s), resetCpuState(s.cfg))).toEqual(s);
    }
  });

  it('rejects an unknown subsection, naming it and its offset', () => {
    const base = encode(resetCpuState());
    const w = new ByteWriter().bytes(base).u8(0x05).idstr('e2k-cpu/bogus').u32be(1).u32be(0);
    const err = (() => {
      try {
        decode(w.written());
      } catch (e) {
        return e as VmstateError;
      }
    })();
    expect(err).toBeInstanceOf(VmstateError);
    expect(err?.code).toBe('E_UNKNOWN_SUBSECTION');
    expect(err?.what).toBe('e2k-cpu/bogus');
    expect(err?.offset).toBe(base.length);
  });

  it('rejects a stream version it does not know', () => {
    const bytes = encode(resetCpuState());
    expect(() => decodeVmsd(vmstateE2kCpu, new ByteReader(bytes), 2, resetCpuState())).toThrow(
      expect.objectContaining({ code: 'E_VERSION' }),
    );
    expect(() => decodeVmsd(vmstateE2kCpu, new ByteReader(bytes), 0, resetCpuState())).toThrow(
      expect.objectContaining({ code: 'E_VERSION' }),
    );
  });

  it('reports truncation with the field being read', () => {
    const bytes = encode(resetCpuState());
    for (const cut of [0, 1, 40, 200, bytes.length - 1]) {
      expect(() => decode(bytes.subarray(0, cut))).toThrow(expect.objectContaining({ code: 'E_TRUNCATED' }));
    }
  });

  it('decodes the optional unmodelled subsection when PSHTP = PCSHTP = 0 and drops it', () => {
    const w = new ByteWriter().bytes(encode(resetCpuState()));
    w.u8(0x05).idstr('e2k-cpu/unmodelled').u32be(1).u64be(0n).u64be(0n).u64be(0x40n);
    const back = decode(w.written()) as E2kCpuState & { unmodelled?: unknown };
    expect(back.unmodelled).toBeUndefined();
    expect(back).toEqual(resetCpuState());
  });
});
