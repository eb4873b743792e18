import { ByteReader, ByteWriter, decodeVmsd, encodeVmsd } from '@e2k-migrate/vmstate';
import { describe, expect, it } from 'vitest';
import { caught, type InvariantCase, load } from '../test-util/invariant-cases.js';
import { e2kCpuVmsd, vmstateE2kCpu } from './cpu.vmstate.js';
import { cpuConfig, encodeModelName, resetCpuState } from './state.js';
import { CPU_INVARIANTS, validateCpuState } from './validate.js';

const HARD: InvariantCase[] = [
  {
    id: 'C1',
    field: 'cfg.isa',
    mutate: (s) => {
      s.cfg.isa = 5;
    },
  },
  {
    id: 'C1',
    field: 'cfg.isa',
    mutate: (s) => {
      s.cfg.isa = 9;
    },
  },
  {
    id: 'C1',
    field: 'cfg.model',
    mutate: (s) => {
      s.cfg.model = encodeModelName('z80');
    },
  },
  { id: 'C2', field: 'cfg.tags', mutate: () => {}, dest: { tags: true } },
  { id: 'C2', field: 'cfg.long_bits', mutate: () => {}, dest: { longBits: 32 } },
  { id: 'C2', field: 'cfg.model', mutate: () => {}, dest: { model: 'elbrus-v4' } },
  { id: 'C2', field: 'cfg.isa', mutate: () => {}, dest: { model: 'e8c2' } },
  {
    id: 'C3',
    field: 'cfg.nr',
    mutate: (s) => {
      s.cfg.nr = 112;
    },
  },
  {
    id: 'C3',
    field: 'cfg.gr',
    mutate: (s) => {
      s.cfg.gr = 16;
    },
  },
  {
    id: 'W1',
    field: 'wd_base',
    mutate: (s) => {
      s.wd_base = 2;
    },
  },
  {
    id: 'W2',
    field: 'wd_size',
    mutate: (s) => {
      s.wd_size = 226;
    },
  },
  {
    id: 'W2',
    field: 'wd_size',
    mutate: (s) => {
      s.wd_size = 15;
    },
  },
  {
    id: 'W3',
    field: 'wd_psize',
    mutate: (s) => {
      s.wd_psize = -2;
    },
  },
  {
    id: 'W5',
    field: 'wd_fx',
    mutate: (s) => {
      s.wd_fx = 2;
    },
  },
  {
    id: 'W5',
    field: 'wdbl',
    mutate: (s) => {
      s.wdbl = 3;
    },
  },
  {
    id: 'B1',
    field: 'bn_size',
    mutate: (s) => {
      s.bn_size = 130;
    },
  },
  {
    id: 'B1',
    field: 'bn_base',
    mutate: (s) => {
      s.bn_base = 127;
    },
  },
  {
    id: 'B1',
    field: 'bn_cur',
    mutate: (s) => {
      s.bn_cur = 8;
    },
  },
  { id: 'B2', field: 'bn_size', mutate: (s) => Object.assign(s, { bn_base: 120, bn_size: 110 }) },
  {
    id: 'B4',
    field: 'bp_size',
    mutate: (s) => {
      s.bp_size = 0;
    },
  },
  {
    id: 'B4',
    field: 'bp_cur',
    mutate: (s) => {
      s.bp_cur = 1;
    },
  },
  {
    id: 'B5',
    field: 'bgr',
    mutate: (s) => {
      s.bgr = 0x800;
    },
  },
  {
    id: 'P1',
    field: 'psr',
    mutate: (s) => {
      s.psr = 0x80;
    },
  },
  {
    id: 'P1',
    field: 'upsr',
    mutate: (s) => {
      s.upsr = 0x800;
    },
  },
  {
    id: 'P1',
    field: 'cuir',
    mutate: (s) => {
      s.cuir = 0x20000;
    },
  },
  {
    id: 'I1',
    field: 'ip',
    mutate: (s) => {
      s.ip = 0x1004n;
    },
  },
  {
    id: 'I1',
    field: 'ip',
    mutate: (s) => {
      s.ip = 1n << 48n;
    },
  },
  {
    id: 'I1',
    field: 'ip',
    mutate: (s) => {
      s.ip = 1n << 32n;
    },
    cfg: { longBits: 32 },
  },
  {
    id: 'T1',
    field: 'ctpr[1]',
    mutate: (s) => {
      s.ctpr[1] = 1n << 50n;
    },
  },
  {
    id: 'T1',
    field: 'ctpr[2]',
    mutate: (s) => {
      s.ctpr[2] = 1n << 62n;
    },
  },
  {
    id: 'L1',
    field: 'lsr',
    mutate: (s) => {
      s.lsr = 1n << 62n;
    },
  },
  {
    id: 'L1',
    field: 'ilcr',
    mutate: (s) => {
      s.ilcr = 1n << 40n;
    },
  },
  { id: 'L2', field: 'lsr_lcnt', mutate: (s) => Object.assign(s, { lsr: 5n, lsr_lcnt: (1n << 32n) + 5n }) },
  { id: 'L2', field: 'ilcr_lcnt', mutate: (s) => Object.assign(s, { ilcr: 5n, ilcr_lcnt: (1n << 33n) + 5n }) },
  { id: 'L3', field: 'lsr_lcnt', mutate: (s) => Object.assign(s, { lsr: 8n, lsr_lcnt: 7n }) },
  { id: 'L3', field: 'ilcr_lcnt', mutate: (s) => Object.assign(s, { ilcr: 8n, ilcr_lcnt: 9n }) },
  {
    id: 'S1',
    field: 'psp_hi',
    mutate: (s) => {
      s.psp_hi = (0x1000n << 32n) | 0x1010n;
    },
  },
  {
    id: 'S1',
    field: 'pcsp_lo',
    mutate: (s) => {
      s.pcsp_lo &= ~(1n << 60n);
    },
  },
  {
    id: 'S1',
    field: 'psp_lo',
    mutate: (s) => {
      s.psp_lo = (0xffff_ffff_f000n | (3n << 59n)) & 0xffff_ffff_ffff_ffffn;
    },
  },
  {
    id: 'S2',
    field: 'pcsp_hi',
    mutate: (s) => {
      s.pcsp_hi = (0xa1_0000n << 32n) | 16n;
    },
  },
  {
    id: 'S2',
    field: 'pcsp_hi',
    mutate: (s) => {
      s.pcsp_hi = (32n << 32n) | 32n;
    },
  },
  {
    id: 'S3',
    field: 'psp_hi',
    mutate: (s) => {
      s.psp_hi = (0x10_0000n << 32n) | 8n;
    },
  },
  {
    id: 'S6',
    field: 'psp_tagbase',
    mutate: (s) => {
      s.psp_tagbase = 0n;
    },
    cfg: { tags: true },
  },
  {
    id: 'S7',
    field: 'usd_lo',
    mutate: (s) => {
      s.usd_lo = 1n << 58n;
    },
  },
  {
    id: 'S7',
    field: 'usd_hi',
    mutate: (s) => {
      s.usd_hi = 4n;
    },
  },
  {
    id: 'F1',
    field: 'fpcr',
    mutate: (s) => {
      s.fpcr = 0x17f;
    },
  },
  {
    id: 'R1',
    field: 'rf_tag[3]',
    mutate: (s) => {
      s.rf_tag[3] = 1;
    },
  },
  {
    id: 'R1',
    field: 'pregs',
    mutate: (s) => {
      s.pregs = 2n;
    },
  },
  {
    id: 'A1',
    field: 'aau.aasr',
    mutate: (s) => {
      s.aau.aasr = 2 << 7;
    },
  },
  {
    id: 'A1',
    field: 'aau.aasr',
    mutate: (s) => {
      s.aau.aasr = 1;
    },
  },
  {
    id: 'M1',
    field: 'core_mode',
    mutate: (s) => {
      s.core_mode = 1n;
    },
    cfg: { model: 'e2c+' },
  },
  {
    id: 'U1',
    field: 'is_bp',
    mutate: (s) => Object.assign(s, { is_bp: 2, pcsp_hi: (0xa1_0000n << 32n) | 32n }),
    cfg: { mode: 1 },
  },
  {
    id: 'U1',
    field: 'is_bp',
    mutate: (s) => {
      s.is_bp = 1;
    },
    cfg: { mode: 1 },
  },
];

describe('§6 hard invariants', () => {
  it.each(HARD.map((c) => [`${c.id} ${c.field}`, c] as const))('%s rejects the state, naming the field', (_, c) => {
    const s = resetCpuState(cpuConfig(c.cfg));
    c.mutate(s);
    const dest = cpuConfig({ ...c.cfg, ...c.dest });
    const err = caught(() => load(s, dest));
    expect(err.code).toBe('E_CPU_INVARIANT');
    expect(err.invariant).toBe(c.id);
    expect(err.field).toBe(c.field);
    expect(err.severity).toBe('hard');
    expect(err.cpuIndex).toBe(3);
    expect(err.message).toContain(c.field);
    expect(err.message).toContain(err.value);
    // the unmodified state loads
    expect(() => load(resetCpuState(cpuConfig(c.cfg)), cpuConfig(c.cfg))).not.toThrow();
  });

  it('S9 rejects an unmodelled subsection with register-resident stack parts', () => {
    const w = new ByteWriter().bytes(encodeVmsd(vmstateE2kCpu, resetCpuState(), new ByteWriter()).written());
    w.u8(0x05).idstr('e2k-cpu/unmodelled').u32be(1).u64be(0x20n).u64be(0n).u64be(0n);
    const err = caught(() =>
      decodeVmsd(e2kCpuVmsd({ dest: cpuConfig() }), new ByteReader(w.written()), 1, resetCpuState()),
    );
    expect([err.invariant, err.field, err.value]).toEqual(['S9', 'unmodelled.pshtp', '0x20']);
  });

  it('A3 rejects tag masks wider than the AAU registers (not representable on the wire)', () => {
    for (const [field, v] of [
      ['aasti_tags', 0x1_0000],
      ['aaind_tags', 0x2_0000],
      ['aaincr_tags', 0x100],
    ] as const) {
      const s = resetCpuState();
      s.aau[field] = v;
      const err = caught(() => validateCpuState(s));
      expect([err.invariant, err.field]).toEqual(['A3', `aau.${field}`]);
    }
  });

  it('names the value in hex for registers', () => {
    const s = resetCpuState();
    s.ip = 0x1234_5678_9abcn + 2n;
    const err = caught(() => load(s));
    expect(err.value).toBe('0x123456789abe');
  });

  it('covers every hard invariant of spec §6', () => {
    const hardIds = CPU_INVARIANTS.filter((i) => i.severity === 'hard').map((i) => i.id);
    const tested = new Set([...HARD.map((c) => c.id), 'S9', 'A3']);
    expect(hardIds.filter((id) => !tested.has(id))).toEqual([]);
  });
});
