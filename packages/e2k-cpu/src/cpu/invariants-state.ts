import {
  AASR_LDS_VALUES,
  AASR_VALID_MASK,
  E2K_CRS_SIZE,
  E2K_MODE_USER,
  RWAP_LO_MASK,
  USD_LO_PROTECTED,
} from './constants.js';
import { type Invariant, violation as v, when } from './invariant.js';
import { fpcrPrecision, hex, unpackRwap, unpackStackPointer } from './packing.js';
import { DESCRIPTOR_NAMES } from './state.js';

const ADDR_LIMIT = 1n << 48n;
/** FPSR bits qemu uses: ef [5:0], es 7, c1 9, b 15. */
const FPSR_USED = 0x82bf;
const AAD_TAGS = [0, 1, 2, 4, 5, 6];

/** §6 checks on stacks, FPU, register tags, AAU, CORE_MODE and the linux-user fields. */
export const STATE_INVARIANTS: readonly Invariant[] = [
  {
    id: 'S1',
    severity: 'hard',
    summary: 'PSP and PCSP: index <= size, base + size <= 2^48, readable and writable',
    check: (s) =>
      (
        [
          ['psp', s.psp_lo, s.psp_hi],
          ['pcsp', s.pcsp_lo, s.pcsp_hi],
        ] as const
      ).flatMap(([name, lo, hi]) => {
        const p = unpackStackPointer(lo, hi);
        const up = name.toUpperCase();
        if (p.index > p.size) {
          return [v('S1', 'hard', `${name}_hi`, hi, `e2k-cpu: ${up} index ${hex(p.index)} beyond size ${hex(p.size)}`)];
        }
        if (p.base + BigInt(p.size) > ADDR_LIMIT) {
          return [
            v('S1', 'hard', `${name}_lo`, lo, `e2k-cpu: ${up} base ${hex(p.base)} + size ${hex(p.size)} beyond 2^48`),
          ];
        }
        return when(!p.read || !p.write, () =>
          v('S1', 'hard', `${name}_lo`, lo, `e2k-cpu: ${up} is not marked readable and writable`),
        );
      }),
  },
  {
    id: 'S2',
    severity: 'hard',
    summary: 'pcsp.index % 32 == 0 and pcsp.index + 32 <= pcsp.size',
    check: (s) => {
      const p = unpackStackPointer(s.pcsp_lo, s.pcsp_hi);
      return when(p.index % E2K_CRS_SIZE !== 0 || p.index + E2K_CRS_SIZE > p.size, () =>
        v('S2', 'hard', 'pcsp_hi', s.pcsp_hi, `e2k-cpu: PCSP.index ${hex(p.index)} not a chain-record boundary`),
      );
    },
  },
  {
    id: 'S3',
    severity: 'hard',
    summary: 'psp.index % 16 == 0',
    check: (s) => {
      const p = unpackStackPointer(s.psp_lo, s.psp_hi);
      return when(p.index % 16 !== 0, () =>
        v('S3', 'hard', 'psp_hi', s.psp_hi, `e2k-cpu: PSP.index ${hex(p.index)} misaligned`),
      );
    },
  },
  {
    id: 'S4',
    severity: 'soft',
    summary: 'pcsp.index >= 32 in user mode',
    check: (s) =>
      when(s.cfg.mode === E2K_MODE_USER && unpackStackPointer(s.pcsp_lo, s.pcsp_hi).index < E2K_CRS_SIZE, () =>
        v('S4', 'soft', 'pcsp_hi', s.pcsp_hi, 'e2k-cpu: linux-user PCSP.index below the initial frame'),
      ),
  },
  {
    id: 'S5',
    severity: 'soft',
    summary: 'PSP/PCSP base and size 4 KiB aligned',
    check: (s) =>
      (
        [
          ['psp', s.psp_lo, s.psp_hi],
          ['pcsp', s.pcsp_lo, s.pcsp_hi],
        ] as const
      ).flatMap(([name, lo, hi]) => {
        const p = unpackStackPointer(lo, hi);
        return when((p.base & 0xfffn) !== 0n || (p.size & 0xfff) !== 0, () =>
          v('S5', 'soft', `${name}_lo`, lo, `e2k-cpu: ${name.toUpperCase()} base/size not 4 KiB aligned`),
        );
      }),
  },
  {
    id: 'S6',
    severity: 'hard',
    summary: 'psp_tagbase != 0 when cfg.tags (hard); pcsp_tagbase == 0 (soft)',
    check: (s) => [
      ...when(s.cfg.tags && s.psp_tagbase === 0n, () =>
        v('S6', 'hard', 'psp_tagbase', s.psp_tagbase, 'e2k-cpu: tags enabled but no PS tag area'),
      ),
      ...when(s.pcsp_tagbase !== 0n, () =>
        v('S6', 'soft', 'pcsp_tagbase', s.pcsp_tagbase, 'e2k-cpu: PCSP has a tag base (unused by qemu)'),
      ),
    ],
  },
  {
    id: 'S7',
    severity: 'hard',
    summary: 'USD not protected (bit 58 == 0) and usd.hi curptr == 0',
    check: (s) => [
      ...when((s.usd_lo & USD_LO_PROTECTED) !== 0n, () =>
        v('S7', 'hard', 'usd_lo', s.usd_lo, 'e2k-cpu: protected-mode USD not supported'),
      ),
      ...when((s.usd_hi & 0xffff_ffffn) !== 0n, () =>
        v('S7', 'hard', 'usd_hi', s.usd_hi, 'e2k-cpu: protected-mode USD not supported (curptr != 0)'),
      ),
    ],
  },
  {
    id: 'S8',
    severity: 'soft',
    summary: 'usd.base, usd.size 16-aligned and usd.base + usd.size == sbr',
    check: (s) => {
      const u = unpackRwap(s.usd_lo, s.usd_hi);
      return when(u.base % 16n !== 0n || u.size % 16 !== 0 || u.base + BigInt(u.size) !== s.sbr, () =>
        v(
          'S8',
          'soft',
          'usd_lo',
          s.usd_lo,
          `e2k-cpu: USD base+size ${hex(u.base + BigInt(u.size))} != SBR ${hex(s.sbr)}`,
        ),
      );
    },
  },
  {
    id: 'S9',
    severity: 'hard',
    summary: 'with e2k-cpu/unmodelled present, PSHTP == 0 and PCSHTP == 0',
    check: (s) => {
      const u = s.unmodelled;
      if (!u) return [];
      const msg = 'e2k-cpu: register-resident stack parts (PSHTP/PCSHTP) not supported; spill first';
      if (u.pshtp !== 0n) return [v('S9', 'hard', 'unmodelled.pshtp', u.pshtp, msg)];
      return when(u.pcshtp !== 0n, () => v('S9', 'hard', 'unmodelled.pcshtp', u.pcshtp, msg));
    },
  },
  {
    id: 'F1',
    severity: 'hard',
    summary: 'fpcr.pc != 1',
    check: (s) =>
      when(fpcrPrecision(s.fpcr) === 1, () =>
        v('F1', 'hard', 'fpcr', hex(s.fpcr), 'e2k-cpu: FPCR precision control 1 is reserved'),
      ),
  },
  {
    id: 'F2',
    severity: 'soft',
    summary: 'FPCR/PFPFR/FPSR reserved bits as documented',
    check: (s) => [
      ...when((s.fpcr & 0x40) === 0 || (s.fpcr & 0x80) !== 0 || (s.fpcr & 0xe000) !== 0 || s.fpcr > 0xffff, () =>
        v('F2', 'soft', 'fpcr', hex(s.fpcr), 'e2k-cpu: FPCR reserved bits'),
      ),
      ...when((s.pfpfr & 0x40) !== 0 || (s.pfpfr & 0x3ff_0000) !== 0, () =>
        v('F2', 'soft', 'pfpfr', hex(s.pfpfr), 'e2k-cpu: PFPFR reserved bits'),
      ),
      ...when((s.fpsr & ~FPSR_USED) !== 0, () => v('F2', 'soft', 'fpsr', hex(s.fpsr), 'e2k-cpu: FPSR unused bits set')),
    ],
  },
  {
    id: 'R1',
    severity: 'hard',
    summary: '!cfg.tags => all rf_tag == 0 and no predicate tag bits',
    check: (s) => {
      if (s.cfg.tags) return [];
      const msg = 'e2k-cpu: register tags present but tag support disabled';
      const i = s.rf_tag.findIndex((t) => t !== 0);
      if (i >= 0) return [v('R1', 'hard', `rf_tag[${i}]`, hex(s.rf_tag[i] as number), msg)];
      return when((s.pregs & 0xaaaa_aaaa_aaaa_aaaan) !== 0n, () => v('R1', 'hard', 'pregs', s.pregs, msg));
    },
  },
  {
    id: 'R2',
    severity: 'soft',
    summary: 'cfg.tags => each 2-bit sub-tag in {0,1}',
    check: (s) => {
      const i = s.cfg.tags ? s.rf_tag.findIndex((t) => (t & 0xaa) !== 0) : -1;
      return when(i >= 0, () =>
        v(
          'R2',
          'soft',
          `rf_tag[${i}]`,
          hex(s.rf_tag[i] as number),
          'e2k-cpu: protected-mode tag value in the register file',
        ),
      );
    },
  },
  {
    id: 'R3',
    severity: 'soft',
    summary: 'ISA < 5 => upper tag nibble only in a 0x55 fill',
    check: (s) => {
      const i = s.cfg.isa < 5 ? s.rf_tag.findIndex((t) => (t & 0xf0) !== 0 && t !== 0x55) : -1;
      return when(i >= 0, () =>
        v('R3', 'soft', `rf_tag[${i}]`, hex(s.rf_tag[i] as number), `e2k-cpu: 128-bit tag on ISA v${s.cfg.isa}`),
      );
    },
  },
  {
    id: 'A1',
    severity: 'hard',
    summary: 'aasr.lds in {0,1,3,5} and bits outside [9:5] zero',
    check: (s) => {
      const sr = s.aau.aasr;
      return when((sr & ~AASR_VALID_MASK) !== 0 || !AASR_LDS_VALUES.includes((sr >>> 7) & 7), () =>
        v('A1', 'hard', 'aau.aasr', hex(sr), `e2k-cpu: AASR ${hex(sr)} invalid`),
      );
    },
  },
  {
    id: 'A2',
    severity: 'soft',
    summary: 'AAD tags in {0,1,2,4,5,6}; AALDA reserved bits zero',
    check: (s) => {
      const d = s.aau.aad.findIndex((a) => !AAD_TAGS.includes(Number((a.lo >> 54n) & 7n)));
      const l = s.aau.aalda.findIndex((x) => (x & 0xe8) !== 0);
      return [
        ...when(d >= 0, () => v('A2', 'soft', `aau.aad[${d}].lo`, s.aau.aad[d]?.lo ?? 0n, 'e2k-cpu: AAD tag invalid')),
        ...when(l >= 0, () =>
          v('A2', 'soft', `aau.aalda[${l}]`, hex(s.aau.aalda[l] ?? 0), 'e2k-cpu: AALDA reserved bits'),
        ),
      ];
    },
  },
  {
    id: 'A3',
    severity: 'hard',
    summary: 'aasti_tags, aaind_tags < 2^16; aaincr_tags < 2^8',
    check: (s) =>
      (
        [
          ['aau.aasti_tags', s.aau.aasti_tags, 0xffff],
          ['aau.aaind_tags', s.aau.aaind_tags, 0xffff],
          ['aau.aaincr_tags', s.aau.aaincr_tags, 0xff],
        ] as const
      ).flatMap(([name, val, max]) =>
        when(val < 0 || val > max, () =>
          v('A3', 'hard', name, hex(val), `e2k-cpu: ${name} has bits beyond ${hex(max)}`),
        ),
      ),
  },
  {
    id: 'A4',
    severity: 'soft',
    summary: 'aaincr[0] == 1',
    check: (s) =>
      when(s.aau.aaincr[0] !== 1, () =>
        v('A4', 'soft', 'aau.aaincr[0]', s.aau.aaincr[0] ?? 0, 'e2k-cpu: AAINCR0 != 1'),
      ),
  },
  {
    id: 'A5',
    severity: 'soft',
    summary: 'inactive prefetch areas (fmt == 0) are all zero',
    check: (s) =>
      (['apb_l', 'apb_r'] as const).flatMap((ch) => {
        const i = s.aau[ch].findIndex(
          (a) => ((a.pi >> 25n) & 7n) === 0n && (a.pi !== 0n || a.cdi !== 0 || a.ldi !== 0),
        );
        return when(i >= 0, () =>
          v('A5', 'soft', `aau.${ch}[${i}]`, s.aau[ch][i]?.pi ?? 0n, 'e2k-cpu: inactive AAU area not zero'),
        );
      }),
  },
  {
    id: 'M1',
    severity: 'hard',
    summary: 'core_mode == 0 when ISA < 3',
    check: (s) =>
      when(s.cfg.isa < 3 && s.core_mode !== 0n, () =>
        v('M1', 'hard', 'core_mode', s.core_mode, 'e2k-cpu: CORE_MODE requires ISA v3+'),
      ),
  },
  {
    id: 'M2',
    severity: 'soft',
    summary: 'RWAP/descriptor lo words within the qemu write mask',
    check: (s) => {
      const lo: [string, bigint][] = [
        ['usd_lo', s.usd_lo],
        ...DESCRIPTOR_NAMES.map((n) => [`${n}.lo`, s[n].lo] as [string, bigint]),
      ];
      return lo.flatMap(([name, val]) =>
        when((val & ~RWAP_LO_MASK) !== 0n, () =>
          v('M2', 'soft', name, val, `e2k-cpu: ${name} has bits outside the RWAP mask`),
        ),
      );
    },
  },
  {
    id: 'U1',
    severity: 'hard',
    summary: 'is_bp in {0,1}; is_bp == 1 => pcsp.index >= 32',
    check: (s) => {
      if (s.is_bp !== 0 && s.is_bp !== 1) return [v('U1', 'hard', 'is_bp', s.is_bp, 'e2k-cpu: is_bp not boolean')];
      return when(s.is_bp === 1 && unpackStackPointer(s.pcsp_lo, s.pcsp_hi).index < E2K_CRS_SIZE, () =>
        v('U1', 'hard', 'is_bp', s.is_bp, 'e2k-cpu: breakpoint frame flagged but PCSP.index < 32'),
      );
    },
  },
];
