import { ByteReader, ByteWriter, decodeVmsd, encodeVmsd } from '@e2k-migrate/vmstate';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { ILCR_VALID_MASK, PSP_LO_READ, PSP_LO_WRITE } from './constants.js';
import { e2kCpuVmsd, vmstateE2kCpu } from './cpu.vmstate.js';
import { CpuView } from './cpu-view.js';
import { cpuConfig, DESCRIPTOR_NAMES, type E2kCpuState, resetCpuState } from './state.js';
import { checkCpuState } from './validate.js';

const u64 = fc.bigInt({ min: 0n, max: (1n << 64n) - 1n });
const bits = (n: number) => fc.bigInt({ min: 0n, max: (1n << BigInt(n)) - 1n });
const even = (lo: number, hi: number) => fc.integer({ min: lo / 2, max: hi / 2 }).map((x) => x * 2);
const maybeZero = <T>(arb: fc.Arbitrary<T>, zero: T) => fc.oneof(fc.constant(zero), arb);
const rwap = fc.record({ lo: bits(48).map((b) => b | (3n << 59n)), hi: bits(64) });

/** CPU states that satisfy every hard §6 invariant (soft ones may be violated). */
const validState: fc.Arbitrary<E2kCpuState> = fc
  .record({
    model: fc.constantFrom('elbrus-v1', 'e2c+', 'e2s', 'e8c', 'e1c+', 'e8c2', 'e16c', 'e8v7'),
    tags: fc.boolean(),
    mode: fc.constantFrom(0 as const, 1 as const),
  })
  .chain(({ model, tags, mode }) => {
    const cfg = cpuConfig({ model, tags, mode });
    const lcnt = cfg.isa >= 5 ? u64 : bits(32);
    const ctpr = fc
      .record({
        target: bits(48),
        tag: fc.constantFrom(0n, 2n, 3n, 5n),
        opc: fc.constantFrom(0n, 1n, 3n),
        ipd: fc.constantFrom(0n, 1n, 2n),
      })
      .map((c) => c.target | (c.tag << 54n) | (c.opc << 57n) | (c.ipd << 59n));
    const stack = (stride: number, reserve: number) =>
      fc
        .record({ base: bits(40), size: fc.integer({ min: reserve / stride, max: 0x10_0000 }).map((x) => x * stride) })
        .chain(({ base, size }) =>
          fc.integer({ min: 0, max: (size - reserve) / stride }).map((i) => ({
            lo: base | PSP_LO_READ | PSP_LO_WRITE,
            hi: (BigInt(size) << 32n) | BigInt(i * stride),
          })),
        );
    return fc
      .record({
        ip: bits(45).map((x) => x * 8n),
        nip: u64,
        ctpr: fc.array(ctpr, { minLength: 3, maxLength: 3 }),
        psr: fc.integer({ min: 0, max: 0x7f }),
        upsr: fc.integer({ min: 0, max: 0x7ff }),
        cuir: fc.integer({ min: 0, max: 0x1ffff }),
        wd_size: even(0, 224),
        wd_psize: even(0, 224),
        wd_fx: fc.constantFrom(0, 1),
        wdbl: fc.constantFrom(0, 1),
        bn: even(2, 128).chain((size) =>
          fc.record({ size: fc.constant(size), base: even(0, Math.min(126, 224 - size)), cur: even(0, size - 2) }),
        ),
        bp: fc
          .integer({ min: 1, max: 32 })
          .chain((size) => fc.record({ size: fc.constant(size), cur: fc.integer({ min: 0, max: size - 1 }) })),
        bgr: fc.integer({ min: 0, max: 0x7ff }),
        pregs: u64.map((p) => (tags ? p : p & 0x5555_5555_5555_5555n)),
        lsr: fc
          .record({ hi: bits(29), lcnt })
          .map(({ hi, lcnt }) => ({ lsr: (hi << 32n) | (lcnt & 0xffff_ffffn), lcnt })),
        ilcr: fc
          .record({ v: u64, lcnt })
          .map(({ v, lcnt }) => ({ ilcr: (v & ILCR_VALID_MASK & ~0xffff_ffffn) | (lcnt & 0xffff_ffffn), lcnt })),
        sbr: u64,
        usd: fc.record({ lo: u64.map((v) => v & ~(1n << 58n)), size: bits(32) }),
        psp: stack(16, 0),
        pcsp: stack(32, 32),
        tagbase: bits(48).map((b) => b | 1n),
        pfpfr: fc.integer({ min: 0, max: 0xffff_ffff }),
        fpcr: fc.integer({ min: 0, max: 0xffff_ffff }).filter((v) => ((v >>> 8) & 3) !== 1),
        fpsr: fc.integer({ min: 0, max: 0xffff_ffff }),
        rf_lo: fc.array(u64, { minLength: 256, maxLength: 256 }),
        rf_tag: fc.array(fc.integer({ min: 0, max: 255 }), { minLength: 256, maxLength: 256 }),
        rf_hi: maybeZero(fc.array(u64, { minLength: 256, maxLength: 256 }), new Array<bigint>(256).fill(0n)),
        aau: maybeZero(
          fc.record({
            aasr: fc
              .constantFrom(0, 1, 3, 5)
              .chain((lds) => fc.integer({ min: 0, max: 3 }).map((x) => (lds << 7) | (x << 5))),
            aasti: fc.array(fc.integer({ min: 0, max: 0xffff_ffff }), { minLength: 16, maxLength: 16 }),
            aasti_tags: fc.integer({ min: 0, max: 0xffff }),
            aad: fc.array(fc.record({ lo: u64, hi: u64 }), { minLength: 32, maxLength: 32 }),
            aalda: fc.array(fc.integer({ min: 0, max: 255 }), { minLength: 64, maxLength: 64 }),
            area: fc.record({
              pi: u64,
              cdi: fc.integer({ min: 0, max: 0xffff_ffff }),
              ldi: fc.integer({ min: 0, max: 0xffff_ffff }),
            }),
          }),
          undefined,
        ),
        sys: maybeZero(
          fc.record({ d: fc.array(rwap, { minLength: 10, maxLength: 10 }), osr0: u64, core: u64 }),
          undefined,
        ),
        dam: maybeZero(fc.array(u64, { minLength: 32, maxLength: 32 }), undefined),
        lock: fc.array(u64, { minLength: 2, maxLength: 2 }),
        is_bp: fc.constantFrom(0, 1),
        elf_flags: fc.integer({ min: 0, max: 0xffff_ffff }),
      })
      .map((r) => {
        const s = resetCpuState(cfg);
        Object.assign(s, {
          ip: r.ip,
          nip: r.nip,
          ctpr: r.ctpr,
          psr: r.psr,
          upsr: r.upsr,
          cuir: r.cuir,
          wd_size: r.wd_size,
          wd_psize: r.wd_psize,
          wd_fx: r.wd_fx,
          wdbl: r.wdbl,
          bn_base: r.bn.base,
          bn_size: r.bn.size,
          bn_cur: r.bn.cur,
          bp_size: r.bp.size,
          bp_cur: r.bp.cur,
          bgr: r.bgr,
          pregs: r.pregs,
          lsr: r.lsr.lsr,
          lsr_lcnt: r.lsr.lcnt,
          ilcr: r.ilcr.ilcr,
          ilcr_lcnt: r.ilcr.lcnt,
          sbr: r.sbr,
          usd_lo: r.usd.lo,
          usd_hi: BigInt(r.usd.size) << 32n,
          psp_lo: r.psp.lo,
          psp_hi: r.psp.hi,
          psp_tagbase: tags ? r.tagbase : 0n,
          pcsp_lo: r.pcsp.lo,
          pcsp_hi: r.pcsp.hi,
          pfpfr: r.pfpfr,
          fpcr: r.fpcr,
          fpsr: r.fpsr,
          rf_lo: r.rf_lo,
          rf_tag: tags ? r.rf_tag : r.rf_tag.map(() => 0),
          rf_hi: r.rf_hi,
          lock_val: r.lock,
          elf_flags: mode === 1 ? r.elf_flags : 0,
          is_bp: mode === 1 && (r.pcsp.hi & 0xffff_ffffn) >= 32n ? r.is_bp : 0,
        });
        if (r.aau) {
          Object.assign(s.aau, {
            aasr: r.aau.aasr,
            aasti: r.aau.aasti,
            aasti_tags: r.aau.aasti_tags,
            aad: r.aau.aad,
            aalda: r.aau.aalda,
          });
          s.aau.apb_r[7] = r.aau.area;
        }
        if (r.sys) {
          DESCRIPTOR_NAMES.forEach((n, i) => {
            s[n] = r.sys?.d[i] ?? { lo: 0n, hi: 0n };
          });
          s.osr0 = r.sys.osr0;
          s.core_mode = cfg.isa >= 3 ? r.sys.core : 0n;
        }
        if (r.dam) s.dam = r.dam;
        return s;
      });
  });

describe('e2k-cpu VMState property', () => {
  it('random valid states pass every hard invariant and round-trip bit-exactly', () => {
    fc.assert(
      fc.property(validState, (s) => {
        expect(checkCpuState(s).errors).toEqual([]);
        const bytes = encodeVmsd(vmstateE2kCpu, s, new ByteWriter()).written();
        const back = decodeVmsd(e2kCpuVmsd({ dest: s.cfg }), new ByteReader(bytes), 1, resetCpuState(s.cfg));
        expect(back).toEqual(s);
        // and re-encoding the loaded state gives the same bytes
        expect(encodeVmsd(vmstateE2kCpu, back, new ByteWriter()).written()).toEqual(bytes);
      }),
      { numRuns: 60 },
    );
  });

  it('the shared CPU buffer holds any valid state exactly', () => {
    fc.assert(
      fc.property(validState, (s) => {
        const view = new CpuView();
        view.write(s);
        expect(view.read()).toEqual(s);
        expect(new CpuView(view.buffer).read()).toEqual(s);
      }),
      { numRuns: 30 },
    );
  });
});
