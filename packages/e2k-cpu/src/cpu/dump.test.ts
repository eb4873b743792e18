import { describe, expect, it } from 'vitest';
import { formatRegisters, registersToJson } from './dump.js';
import { packLsr } from './packing.js';
import { cpuConfig, resetCpuState } from './state.js';

describe('register dump', () => {
  it('prints the cpu-dump order: control, stacks, loop, window, predicates, %r, %b, %g', () => {
    const s = resetCpuState();
    s.ip = 0x2040n;
    s.rf_lo[3] = 0xabcdn;
    s.rf_lo[224 + 13] = 0x77n;
    s.pregs = 1n << 6n; // pred3 = 1
    s.lsr = packLsr({ lcnt: 9, ecnt: 2, vlc: 1, over: 0, ldmc: 0, ldovl: 0, pcnt: 1, strmd: 0, semc: 0 });
    s.lsr_lcnt = 9n;
    const text = formatRegisters(s, 1);
    const lines = text.trimEnd().split('\n');
    expect(lines[0]).toBe('CPU#1 e8c (ISA v4)');
    const order = [
      ' ip ',
      ' ctpr1',
      ' sbr',
      ' psr',
      ' usd',
      ' pcsp',
      ' psp ',
      ' oscud',
      ' lcnt',
      ' ilcnt',
      ' wsz',
      ' pred[0..31]',
      ' %r0 ',
      ' %b[0]',
      ' %g0 ',
    ];
    const idx = order.map((p) => lines.findIndex((l) => l.startsWith(p)));
    expect(idx.every((i) => i > 0)).toBe(true);
    expect([...idx].sort((a, b) => a - b)).toEqual(idx);
    expect(text).toContain(' ip    = 0x0000000000002040');
    expect(lines.find((l) => l.startsWith(' %r3 '))).toBe(' %r3     <00> 0x000000000000abcd');
    expect(lines.find((l) => l.startsWith(' %g13 '))).toBe(' %g13    <00> 0x0000000000000077');
    expect(text).toContain(' lcnt  = 9  pcnt = 1  ecnt = 2  vlc = 1');
    expect(lines.find((l) => l.startsWith(' pred'))).toBe(` pred[0..31] = 0 0 0 1${' 0'.repeat(28)}`);
    // 16 window registers, 8 based (%b[i] = regs[8 + i]), 32 globals
    expect(lines.filter((l) => l.startsWith(' %r')).length).toBe(16);
    expect(lines.filter((l) => l.startsWith(' %b[')).length).toBe(8);
    expect(lines.filter((l) => l.startsWith(' %g')).length).toBe(32);
  });

  it('marks predicate tags and shows rotation', () => {
    const s = resetCpuState(cpuConfig({ tags: true }));
    s.bp_size = 4;
    s.bp_cur = 1;
    s.pregs = 3n << 4n; // physical pred2 = 1, tagged
    const pred = formatRegisters(s)
      .split('\n')
      .find((l) => l.startsWith(' pred'));
    // logical pred1 -> physical (1 + 1) mod 4 = 2
    expect(pred?.split('= ')[1]?.split(' ').slice(0, 4)).toEqual(['0', '1*', '0', '0']);
  });

  it('JSON carries 64-bit values as hex strings, the model by name, and decoded fields', () => {
    const s = resetCpuState();
    s.rf_lo[0] = 0xffff_ffff_ffff_ffffn;
    const j = registersToJson(s) as Record<string, unknown>;
    expect(JSON.parse(JSON.stringify(j))).toEqual(j);
    expect((j.rf_lo as string[])[0]).toBe('0xffffffffffffffff');
    expect((j.cfg as Record<string, unknown>).model).toBe('e8c');
    expect(((j.decoded as Record<string, Record<string, unknown>>).psp as Record<string, unknown>).size).toBe(0x100000);
    expect(j.psp_lo).toBe('0x1800000000810000');
  });
});
