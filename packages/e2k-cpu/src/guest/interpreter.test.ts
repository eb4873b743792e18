import { readFileSync } from 'node:fs';
import { createGuestMemory, type GuestMemory } from '@e2k-migrate/native';
import fc from 'fast-check';
import { afterEach, describe, expect, it } from 'vitest';
import { CpuView } from '../cpu/cpu-view.js';
import { cpuConfig, type E2kCpuState, resetCpuState } from '../cpu/state.js';
import { checkCpuState } from '../cpu/validate.js';
import { Assembler } from './assembler.js';
import { runBundles } from './interpreter.js';
import { decodeBundle, encodeBundle, G, OP, OPCODE_INFO } from './isa.js';
import { CODE_BASE } from './layout.js';

const M64 = (1n << 64n) - 1n;
const mems: GuestMemory[] = [];
afterEach(() => {
  for (const m of mems.splice(0)) m.close();
});

function machine(build: (a: Assembler) => void, init: (s: E2kCpuState) => void = () => {}, cfg = cpuConfig()) {
  const mem = createGuestMemory({ size: 64 * 1024 });
  mems.push(mem);
  const a = new Assembler(CODE_BASE);
  build(a);
  mem.writeBytes(CODE_BASE, a.assemble());
  const s = resetCpuState(cfg);
  s.ip = BigInt(CODE_BASE);
  init(s);
  const cpu = new CpuView();
  cpu.write(s);
  const out: number[] = [];
  const run = (n: number) => runBundles({ cpu, mem, serialOut: (b) => out.push(b) }, n);
  return { mem, cpu, out, run, state: () => cpu.read() };
}

/** Reference semantics of the ALU opcodes, in BigInt. */
function reference(op: number, a: bigint, b: bigint, imm: number): bigint {
  const sx = BigInt.asUintN(64, BigInt(imm));
  switch (op) {
    case OP.ADDD:
      return (a + b) & M64;
    case OP.ADDDI:
      return (a + sx) & M64;
    case OP.SUBD:
      return (a - b) & M64;
    case OP.ANDD:
      return a & b;
    case OP.ANDDI:
      return a & sx;
    case OP.ORD:
      return a | b;
    case OP.XORD:
      return a ^ b;
    case OP.SHLDI:
      return (a << BigInt(imm & 63)) & M64;
    case OP.SHRDI:
      return a >> BigInt(imm & 63);
    case OP.MOVDI:
      return sx;
    case OP.UMODW:
      return (a & 0xffff_ffffn) % (b & 0xffff_ffffn);
    default:
      throw new Error('not an ALU op');
  }
}

describe('guest interpreter', () => {
  it('ALU opcodes match 64-bit reference semantics (property)', () => {
    const ops = [
      OP.ADDD,
      OP.ADDDI,
      OP.SUBD,
      OP.ANDD,
      OP.ANDDI,
      OP.ORD,
      OP.XORD,
      OP.SHLDI,
      OP.SHRDI,
      OP.MOVDI,
      OP.UMODW,
    ];
    const u64 = fc.oneof(fc.bigInt({ min: 0n, max: M64 }), fc.constantFrom(0n, 1n, 0xffff_ffffn, 1n << 32n, M64));
    fc.assert(
      fc.property(
        fc.constantFrom(...ops),
        u64,
        u64,
        fc.integer({ min: -(2 ** 31), max: 2 ** 31 - 1 }),
        (op, a, b, imm) => {
          if (op === OP.UMODW && (b & 0xffff_ffffn) === 0n) b |= 1n;
          const m = machine(
            (x) => {
              const enc = {
                [OP.ADDD]: x.addd,
                [OP.SUBD]: x.subd,
                [OP.ANDD]: x.andd,
                [OP.ORD]: x.ord,
                [OP.XORD]: x.xord,
                [OP.UMODW]: x.umodw,
              } as Record<number, (d: number, a: number, b: number) => unknown>;
              const immOps = {
                [OP.ADDDI]: x.adddi,
                [OP.ANDDI]: x.anddi,
                [OP.SHLDI]: x.shldi,
                [OP.SHRDI]: x.shrdi,
              } as Record<number, (d: number, a: number, i: number) => unknown>;
              if (enc[op]) enc[op](3, 1, 2);
              else if (immOps[op]) immOps[op](3, 1, imm);
              else x.movdi(3, imm);
            },
            (s) => {
              s.rf_lo[1] = a;
              s.rf_lo[2] = b;
            },
          );
          expect(m.run(1)).toEqual({ executed: 1, exit: 'budget' });
          expect(m.state().rf_lo[3]).toBe(reference(op, a, b, imm));
          expect(m.state().ip).toBe(BigInt(CODE_BASE + 8));
        },
      ),
      { numRuns: 150 },
    );
  });

  it('loads and stores every width little-endian through the memory interface', () => {
    const m = machine(
      (a) => {
        a.std(1, 0, 2).stw(1, 8, 2).sth(1, 16, 2).stb(1, 24, 2);
        a.ldd(3, 1, 0).ldw(4, 1, 8).ldh(5, 1, 16).ldb(6, 1, 24).ldb(7, 1, 1);
      },
      (s) => {
        s.rf_lo[1] = 0x8000n;
        s.rf_lo[2] = 0x1122_3344_5566_7788n;
      },
    );
    expect(m.run(9).executed).toBe(9);
    expect(m.mem.load64(0x8000)).toBe(0x1122_3344_5566_7788n);
    expect(m.mem.load32(0x8008)).toBe(0x5566_7788);
    expect(m.mem.load16(0x8010)).toBe(0x7788);
    expect(m.mem.load8(0x8018)).toBe(0x88);
    expect(m.mem.load8(0x8009)).toBe(0x77);
    const s = m.state();
    expect([s.rf_lo[3], s.rf_lo[4], s.rf_lo[5], s.rf_lo[6], s.rf_lo[7]]).toEqual([
      0x1122_3344_5566_7788n,
      0x5566_7788n,
      0x7788n,
      0x88n,
      0x77n,
    ]);
  });

  it('runs a counted loop with setlc/loop and keeps LSR and LSR1 consistent', () => {
    // r2 = sum of 1..10 using the loop counter
    const m = machine((a) => {
      a.movdi(1, 10).setlc(1).movdi(2, 0);
      a.label('top').rdlc(3).addd(2, 2, 3).loop('top');
      a.halt();
    });
    const r = m.run(1000);
    expect(r.exit).toBe('halt');
    expect(r.executed).toBe(3 + 10 * 3);
    const s = m.state();
    expect(s.rf_lo[2]).toBe(55n);
    expect(s.lsr_lcnt).toBe(0n);
    expect((s.lsr >> 38n) & 1n).toBe(1n); // over
    expect((s.lsr >> 37n) & 1n).toBe(1n); // vlc
    expect(s.ilcr_lcnt).toBe(10n);
    expect(s.ip).toBe(BigInt(CODE_BASE + 3 * 8 + 3 * 8)); // on the halt bundle
    expect(checkCpuState(s).errors).toEqual([]);
  });

  it('truncates the loop counter to 32 bits below ISA v5 and keeps 64 bits from v5', () => {
    for (const [model, want] of [
      ['e8c', 5n],
      ['e8c2', (1n << 32n) + 5n],
    ] as const) {
      const m = machine(
        (a) => a.setlc(1),
        (s) => {
          s.rf_lo[1] = (1n << 32n) + 5n;
        },
        cpuConfig({ model }),
      );
      m.run(1);
      expect(m.state().lsr_lcnt).toBe(want);
      expect(checkCpuState(m.state()).errors).toEqual([]);
    }
  });

  it('sets predicates and branches on them, negated or not', () => {
    const m = machine(
      (a) => {
        a.cmpeqd(0, 1, 2).ctp(0, 'eq').movdi(5, 1).label('eq');
        a.cmpbd(1, 2, 1).ctp(1, 'lt', true).movdi(6, 1).label('lt');
        a.cmpeqdi(2, 1, -1).ctp(2, 'm1').movdi(7, 1).label('m1');
        a.cmpeqd(3, 1, 2).ctp(3, 'ne', true).movdi(8, 1).label('ne').halt();
      },
      (s) => {
        s.rf_lo[1] = M64;
        s.rf_lo[2] = M64;
      },
    );
    expect(m.run(100).exit).toBe('halt');
    const s = m.state();
    // taken, taken (negated, pred false), taken, not taken (negated, pred true)
    expect([s.rf_lo[5], s.rf_lo[6], s.rf_lo[7], s.rf_lo[8]]).toEqual([0n, 0n, 0n, 1n]);
    expect(s.pregs & 0xffn).toBe(0b01_01_00_01n); // pred0 = 1, pred1 = 0, pred2 = 1, pred3 = 1, no tags
  });

  it('writes the serial console and clears tags of written registers when tags are on', () => {
    const m = machine(
      (a) => a.souti('H').movdi(1, 0x69).sout(1),
      (s) => {
        s.rf_tag[1] = 0x05;
      },
      cpuConfig({ tags: true }),
    );
    m.run(3);
    expect(String.fromCharCode(...m.out)).toBe('Hi');
    expect(m.state().rf_tag[1]).toBe(0);
  });

  it.each([
    ['an illegal opcode', (a: Assembler) => a.nop(), 'illegal opcode 0xff'],
    ['a misaligned 8-byte load', (a: Assembler) => a.movdi(1, 0x8004).ldd(2, 1, 0), 'misaligned'],
    ['a store beyond RAM', (a: Assembler) => a.movdi(1, 0x10000).stb(1, 0, 2), 'outside RAM'],
    ['a register outside the window', (a: Assembler) => a.movdi(20, 1), 'outside the window'],
    ['division by zero', (a: Assembler) => a.umodw(1, 2, 3), 'division by zero'],
    ['a branch outside RAM', (a: Assembler) => a.label('x').movdi(1, 0).ct('far'), 'branch target'],
  ])('faults on %s, stopping at the faulting bundle', (_, build, reason) => {
    const m = machine((a) => {
      a.nop();
      build(a);
      if (reason === 'branch target') a.label('far');
    });
    if (reason.startsWith('illegal')) m.mem.store8(CODE_BASE + 8, 0xff);
    if (reason === 'branch target') m.mem.store32(CODE_BASE + 16 + 4, 0x100000);
    const before = m.state();
    const r = m.run(10);
    expect(r.exit).toBe('fault');
    expect(r.fault).toContain(reason);
    const faultIp = BigInt(CODE_BASE) + BigInt(r.executed * 8);
    expect(m.state().ip).toBe(faultIp);
    expect(r.executed).toBeGreaterThanOrEqual(1);
    expect(before.ip).toBe(BigInt(CODE_BASE));
  });

  it('accepts %g registers regardless of the window size', () => {
    const m = machine((a) => a.movdi(G(31), 7).adddi(G(0), G(31), 1));
    m.run(2);
    expect(m.state().rf_lo[224]).toBe(8n);
  });

  it('movhi sets the upper word and keeps the lower one', () => {
    const m = machine((a) => a.movdi(1, 5).movhi(1, 0x8234_5678));
    m.run(2);
    expect(m.state().rf_lo[1]).toBe(0x8234_5678_0000_0005n);
  });

  it('encodes bundles as documented, and the README lists every opcode', () => {
    const [lo, hi] = encodeBundle(OP.STD, 1, 2, 3, -8);
    expect([lo, hi]).toEqual([0x0302_0117, 0xffff_fff8]);
    expect(decodeBundle(lo, hi)).toEqual({ op: OP.STD, dst: 1, src1: 2, src2: 3, imm: -8 });
    const readme = readFileSync(new URL('../../README.md', import.meta.url), 'utf8');
    const rows = readme
      .split('\n')
      .filter((l) => l.startsWith('| `0x'))
      .map((l) => l.split(/(?<!\\)\|/).map((c) => c.trim()));
    for (const [op, info] of Object.entries(OPCODE_INFO)) {
      const hex = `\`0x${Number(op).toString(16).padStart(2, '0')}\``;
      expect(rows).toContainEqual([
        '',
        hex,
        `\`${info.name}\``,
        `\`${info.syntax}\``,
        info.effect.replace('|', '\\|'),
        '',
      ]);
    }
    expect(rows.length).toBe(Object.keys(OPCODE_INFO).length);
  });

  it('halts without counting the halt bundle and stays on it', () => {
    const m = machine((a) => a.nop().halt());
    expect(m.run(5)).toEqual({ executed: 1, exit: 'halt' });
    expect(m.run(5)).toEqual({ executed: 0, exit: 'halt' });
    expect(m.state().ip).toBe(BigInt(CODE_BASE + 8));
  });
});
