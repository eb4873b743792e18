import { describe, expect, it } from 'vitest';
import type { InvariantViolation } from '../errors.js';
import { caught, type InvariantCase, load } from '../test-util/invariant-cases.js';
import { cpuConfig, resetCpuState } from './state.js';
import { checkCpuState } from './validate.js';

const SOFT: InvariantCase[] = [
  {
    id: 'C2',
    field: 'cfg.idr',
    mutate: (s) => {
      s.cfg.idr = 8n;
    },
  },
  {
    id: 'W4',
    field: 'wd_psize',
    mutate: (s) => {
      s.wd_psize = 18;
    },
  },
  {
    id: 'P2',
    field: 'upsr',
    mutate: (s) => {
      s.upsr = 0x181;
    },
    cfg: { model: 'e2c+' },
  },
  {
    id: 'I2',
    field: 'ip',
    mutate: (s) => {
      s.ip = 0xe200_0000_0000n;
    },
  },
  {
    id: 'I2',
    field: 'ip',
    mutate: (s) => {
      s.ip = 0xe200_0000_0008n;
    },
    cfg: { mode: 1 },
  },
  {
    id: 'T1',
    field: 'ctpr[0]',
    mutate: (s) => {
      s.ctpr[0] = 1n << 54n;
    },
  },
  {
    id: 'T2',
    field: 'ctpr[0]',
    mutate: (s) => {
      s.ctpr[0] = (3n << 54n) | (1n << 57n);
    },
  },
  { id: 'S4', field: 'pcsp_hi', mutate: () => {}, cfg: { mode: 1 } },
  {
    id: 'S5',
    field: 'psp_lo',
    mutate: (s) => {
      s.psp_lo += 0x10n;
    },
  },
  {
    id: 'S6',
    field: 'pcsp_tagbase',
    mutate: (s) => {
      s.pcsp_tagbase = 0x1000n;
    },
  },
  {
    id: 'S8',
    field: 'usd_lo',
    mutate: (s) => Object.assign(s, { usd_lo: 0x1000n | (3n << 59n), usd_hi: 0x1000n << 32n }),
  },
  {
    id: 'F2',
    field: 'fpcr',
    mutate: (s) => {
      s.fpcr = 0x33f;
    },
  },
  {
    id: 'F2',
    field: 'fpsr',
    mutate: (s) => {
      s.fpsr = 0x40;
    },
  },
  {
    id: 'R2',
    field: 'rf_tag[2]',
    mutate: (s) => {
      s.rf_tag[2] = 0x02;
    },
    cfg: { tags: true },
  },
  {
    id: 'R3',
    field: 'rf_tag[4]',
    mutate: (s) => {
      s.rf_tag[4] = 0x10;
    },
    cfg: { tags: true },
  },
  {
    id: 'A2',
    field: 'aau.aad[1].lo',
    mutate: (s) => {
      s.aau.aad[1] = { lo: 3n << 54n, hi: 0n };
    },
  },
  {
    id: 'A4',
    field: 'aau.aaincr[0]',
    mutate: (s) => {
      s.aau.aaincr[0] = 2;
    },
  },
  {
    id: 'A5',
    field: 'aau.apb_r[3]',
    mutate: (s) => {
      s.aau.apb_r[3] = { pi: 5n, cdi: 0, ldi: 0 };
    },
  },
  {
    id: 'M2',
    field: 'cud.lo',
    mutate: (s) => {
      s.cud = { lo: 1n << 50n, hi: 0n };
    },
  },
];

describe('§6 soft invariants', () => {
  it.each(SOFT.map((c) => [`${c.id} ${c.field}`, c] as const))('%s warns, and rejects in strict mode', (_, c) => {
    const cfg = cpuConfig(c.cfg);
    const s = resetCpuState(cfg);
    if (cfg.mode === 1 && c.id !== 'S4') s.pcsp_hi |= 32n;
    c.mutate(s);
    const warnings: InvariantViolation[] = [];
    const loaded = load(s, cpuConfig(c.cfg), { warnings });
    expect(warnings.map((w) => [w.invariant, w.field])).toContainEqual([c.id, c.field]);
    expect(warnings.every((w) => w.severity === 'soft')).toBe(true);
    expect(loaded.ip).toBe(s.ip);
    const err = caught(() => load(s, cpuConfig(c.cfg), { strict: true }));
    expect([err.invariant, err.field, err.severity]).toEqual([c.id, c.field, 'soft']);
  });

  it('B3 (rotating area beyond the window, normal after a call) is only a note in strict mode', () => {
    const s = resetCpuState();
    s.bn_size = 16;
    expect(checkCpuState(s)).toEqual({ errors: [], warnings: [] });
    const strict = checkCpuState(s, { strict: true });
    expect(strict.errors).toEqual([]);
    expect(strict.warnings.map((w) => w.invariant)).toEqual(['B3']);
  });

  it('a reset CPU of every model is clean, even in strict mode', () => {
    for (const model of ['elbrus-v1', 'e2c+', 'e2s', 'e8c', 'e8c2', 'e16c', 'e48c']) {
      for (const tags of [false, true]) {
        expect(checkCpuState(resetCpuState(cpuConfig({ model, tags })), { strict: true })).toEqual({
          errors: [],
          warnings: [],
        });
      }
    }
  });
});
