import {
  BGR_MASK,
  CTPR_OPC_LDISP,
  CTPR_QEMU_TAGS,
  CTPR_RESERVED_MASK,
  CUIR_MASK,
  E2K_FAKE_KERN_END,
  E2K_FAKE_KERN_START,
  E2K_GR_COUNT,
  E2K_MODE_SYSTEM,
  E2K_NR_COUNT,
  E2K_SIGRET_ADDR,
  E2K_SYSCALL_ADDR_STEP,
  E2K_SYSRET_ADDR,
  E2K_SYSRET_BACKTRACE_ADDR,
  ILCR_VALID_MASK,
  LSR_RESERVED_MASK,
  PSR_MASK,
  UPSR_MASK,
  UPSR_V3_BITS,
} from './constants.js';
import { type Invariant, violation as v, when } from './invariant.js';
import { findCpuModel } from './models.js';
import { hex, unpackCtpr } from './packing.js';
import { modelNameOf } from './state.js';

const even = (n: number) => n % 2 === 0;
const U32 = 1n << 32n;

/** §6 checks on configuration, window, rotation, status, ip, CTPRs and loop counters. */
export const CORE_INVARIANTS: readonly Invariant[] = [
  {
    id: 'C1',
    severity: 'hard',
    summary: 'cfg.isa in 1..7 and consistent with cfg.model',
    check: (s) => {
      const name = modelNameOf(s.cfg.model);
      const m = findCpuModel(name);
      if (!Number.isInteger(s.cfg.isa) || s.cfg.isa < 1 || s.cfg.isa > 7 || (m !== undefined && m.isa !== s.cfg.isa)) {
        return [v('C1', 'hard', 'cfg.isa', s.cfg.isa, `e2k-cpu: unsupported ISA v${s.cfg.isa} for model ${name}`)];
      }
      return when(!m, () =>
        v('C1', 'hard', 'cfg.model', name, `e2k-cpu: unsupported ISA v${s.cfg.isa} for model ${name}`),
      );
    },
  },
  {
    id: 'C2',
    severity: 'hard',
    summary: 'cfg.tags, cfg.long_bits (and the model) equal the destination configuration; IDR compared with a warning',
    check: (s, ctx) => {
      const d = ctx.dest;
      if (!d) return [];
      const mismatch = (field: string, stream: unknown, dest: unknown) =>
        v('C2', 'hard', field, String(stream), `e2k-cpu: config mismatch: ${field} (stream ${stream}, dest ${dest})`);
      const out = [];
      if (s.cfg.tags !== d.tags) out.push(mismatch('cfg.tags', s.cfg.tags, d.tags));
      if (s.cfg.long_bits !== d.long_bits) out.push(mismatch('cfg.long_bits', s.cfg.long_bits, d.long_bits));
      if (s.cfg.mode !== d.mode) out.push(mismatch('cfg.mode', s.cfg.mode, d.mode));
      if (s.cfg.isa !== d.isa) out.push(mismatch('cfg.isa', s.cfg.isa, d.isa));
      const sm = modelNameOf(s.cfg.model);
      const dm = modelNameOf(d.model);
      const sameModel = findCpuModel(sm) !== undefined && findCpuModel(sm) === findCpuModel(dm);
      if (s.cfg.isa === d.isa && !sameModel && !ctx.allowModelMismatch) out.push(mismatch('cfg.model', sm, dm));
      if (s.cfg.idr !== d.idr) {
        out.push(
          v('C2', 'soft', 'cfg.idr', s.cfg.idr, `e2k-cpu: IDR differs (stream ${hex(s.cfg.idr)}, dest ${hex(d.idr)})`),
        );
      }
      return out;
    },
  },
  {
    id: 'C3',
    severity: 'hard',
    summary: 'cfg.nr == 224, cfg.gr == 32',
    check: (s) => [
      ...when(s.cfg.nr !== E2K_NR_COUNT, () =>
        v('C3', 'hard', 'cfg.nr', s.cfg.nr, `e2k-cpu: register file geometry ${s.cfg.nr}/${s.cfg.gr} unsupported`),
      ),
      ...when(s.cfg.gr !== E2K_GR_COUNT, () =>
        v('C3', 'hard', 'cfg.gr', s.cfg.gr, `e2k-cpu: register file geometry ${s.cfg.nr}/${s.cfg.gr} unsupported`),
      ),
    ],
  },
  {
    id: 'W1',
    severity: 'hard',
    summary: 'wd_base == 0',
    check: (s) =>
      when(s.wd_base !== 0, () =>
        v(
          'W1',
          'hard',
          'wd_base',
          s.wd_base,
          `e2k-cpu: WD.base ${s.wd_base} != 0 (non-spilled window layout not supported)`,
        ),
      ),
  },
  {
    id: 'W2',
    severity: 'hard',
    summary: '0 <= wd_size <= 224 and even',
    check: (s) =>
      when(s.wd_size < 0 || s.wd_size > E2K_NR_COUNT || !even(s.wd_size), () =>
        v('W2', 'hard', 'wd_size', s.wd_size, `e2k-cpu: WD.size ${s.wd_size} out of range [0,224] or odd`),
      ),
  },
  {
    id: 'W3',
    severity: 'hard',
    summary: '0 <= wd_psize <= 224 and even',
    check: (s) =>
      when(s.wd_psize < 0 || s.wd_psize > E2K_NR_COUNT || !even(s.wd_psize), () =>
        v('W3', 'hard', 'wd_psize', s.wd_psize, `e2k-cpu: WD.psize ${s.wd_psize} out of range`),
      ),
  },
  {
    id: 'W4',
    severity: 'soft',
    summary: 'wd_psize <= wd_size',
    check: (s) =>
      when(s.wd_psize > s.wd_size, () =>
        v('W4', 'soft', 'wd_psize', s.wd_psize, `e2k-cpu: WD.psize ${s.wd_psize} > WD.size ${s.wd_size}`),
      ),
  },
  {
    id: 'W5',
    severity: 'hard',
    summary: 'wd_fx, wdbl in {0,1}',
    check: (s) => [
      ...when(s.wd_fx !== 0 && s.wd_fx !== 1, () => v('W5', 'hard', 'wd_fx', s.wd_fx, 'e2k-cpu: WD flag not boolean')),
      ...when(s.wdbl !== 0 && s.wdbl !== 1, () => v('W5', 'hard', 'wdbl', s.wdbl, 'e2k-cpu: WD flag not boolean')),
    ],
  },
  {
    id: 'B1',
    severity: 'hard',
    summary: 'bn_size even in 2..128; bn_base even <= 126; bn_cur even < bn_size',
    check: (s) => {
      const msg = `e2k-cpu: BR numeric area (rbs=${s.bn_base / 2} rsz=${s.bn_size / 2 - 1} rcur=${s.bn_cur / 2}) invalid`;
      if (!even(s.bn_size) || s.bn_size < 2 || s.bn_size > 128) return [v('B1', 'hard', 'bn_size', s.bn_size, msg)];
      if (!even(s.bn_base) || s.bn_base < 0 || s.bn_base > 126) return [v('B1', 'hard', 'bn_base', s.bn_base, msg)];
      return when(!even(s.bn_cur) || s.bn_cur < 0 || s.bn_cur >= s.bn_size, () =>
        v('B1', 'hard', 'bn_cur', s.bn_cur, msg),
      );
    },
  },
  {
    id: 'B2',
    severity: 'hard',
    summary: 'bn_base + bn_size <= 224',
    check: (s) =>
      when(s.bn_base + s.bn_size > E2K_NR_COUNT, () =>
        v(
          'B2',
          'hard',
          'bn_size',
          s.bn_size,
          `e2k-cpu: rotating area [${s.bn_base},${s.bn_base + s.bn_size}) overlaps globals`,
        ),
      ),
  },
  {
    id: 'B3',
    severity: 'info',
    summary: 'bn_base + bn_size <= wd_size (normal right after a call; noted in strict mode only)',
    check: (s) =>
      when(s.bn_base + s.bn_size > s.wd_size, () =>
        v(
          'B3',
          'soft',
          'bn_size',
          s.bn_size,
          `e2k-cpu: rotating area [${s.bn_base},${s.bn_base + s.bn_size}) exceeds WD.size ${s.wd_size}`,
        ),
      ),
  },
  {
    id: 'B4',
    severity: 'hard',
    summary: '1 <= bp_size <= 32 and bp_cur < bp_size',
    check: (s) => {
      const msg = `e2k-cpu: BR predicate area (psz=${s.bp_size - 1} pcur=${s.bp_cur}) invalid`;
      if (s.bp_size < 1 || s.bp_size > 32) return [v('B4', 'hard', 'bp_size', s.bp_size, msg)];
      return when(s.bp_cur < 0 || s.bp_cur >= s.bp_size, () => v('B4', 'hard', 'bp_cur', s.bp_cur, msg));
    },
  },
  {
    id: 'B5',
    severity: 'hard',
    summary: 'bgr <= 0x7ff',
    check: (s) =>
      when(s.bgr > BGR_MASK || s.bgr < 0, () =>
        v('B5', 'hard', 'bgr', hex(s.bgr), 'e2k-cpu: BGR has reserved bits set'),
      ),
  },
  {
    id: 'P1',
    severity: 'hard',
    summary: 'psr <= 0x7f, upsr <= 0x7ff, cuir <= 0x1ffff',
    check: (s) =>
      (
        [
          ['psr', s.psr, PSR_MASK],
          ['upsr', s.upsr, UPSR_MASK],
          ['cuir', s.cuir, CUIR_MASK],
        ] as const
      ).flatMap(([name, val, mask]) =>
        when(val < 0 || val > mask, () =>
          v('P1', 'hard', name, hex(val), `e2k-cpu: ${name.toUpperCase()} has reserved bits set (${hex(val)})`),
        ),
      ),
  },
  {
    id: 'P2',
    severity: 'soft',
    summary: 'UPSR bits 8..10 only when ISA >= 3',
    check: (s) =>
      when(s.cfg.isa < 3 && (s.upsr & UPSR_V3_BITS) !== 0, () =>
        v('P2', 'soft', 'upsr', hex(s.upsr), `e2k-cpu: UPSR bits 8..10 set on ISA v${s.cfg.isa}`),
      ),
  },
  {
    id: 'I1',
    severity: 'hard',
    summary: 'ip bundle-aligned and below 2^48 (2^32 on e2k32)',
    check: (s) => {
      const limit = 1n << (s.cfg.long_bits === 32 ? 32n : 48n);
      return when((s.ip & 7n) !== 0n || s.ip < 0n || s.ip >= limit, () =>
        v('I1', 'hard', 'ip', s.ip, `e2k-cpu: IP ${hex(s.ip)} not bundle-aligned/canonical`),
      );
    },
  },
  {
    id: 'I2',
    severity: 'soft',
    summary: 'ip inside the fake kernel page only at a known entry point (linux-user) and never in system mode',
    check: (s) => {
      const e2k32 = s.cfg.long_bits === 32;
      const start = e2k32 ? 0xe000_0000n : E2K_FAKE_KERN_START;
      const end = e2k32 ? 0xe300_0000n : E2K_FAKE_KERN_END;
      if (s.ip < start || s.ip >= end) return [];
      const off = s.ip - start;
      const syscalls = (e2k32 ? [1n, 4n] : [3n, 6n]).map((n) => n * E2K_SYSCALL_ADDR_STEP);
      const entry = [...syscalls, E2K_SYSRET_ADDR, E2K_SIGRET_ADDR, E2K_SYSRET_BACKTRACE_ADDR].includes(off);
      return when(s.cfg.mode === E2K_MODE_SYSTEM || !entry, () =>
        v('I2', 'soft', 'ip', s.ip, 'e2k-cpu: IP inside fake-kernel window but not an entry point'),
      );
    },
  },
  {
    id: 'T1',
    severity: 'hard',
    summary: 'CTPR reserved bits (48..53, 61..63) zero (hard); tag in {0,2,3,5}, opc in {0,1,3}, ipd <= 2 (soft)',
    check: (s) =>
      s.ctpr.flatMap((c, i) => {
        const msg = `e2k-cpu: CTPR${i + 1} malformed (${hex(c)})`;
        if ((c & CTPR_RESERVED_MASK) !== 0n || c < 0n || c >= 1n << 64n) return [v('T1', 'hard', `ctpr[${i}]`, c, msg)];
        const f = unpackCtpr(c);
        return when(!CTPR_QEMU_TAGS.includes(f.tag) || f.opc === 2 || f.ipd > 2, () =>
          v('T1', 'soft', `ctpr[${i}]`, c, msg),
        );
      }),
  },
  {
    id: 'T2',
    severity: 'soft',
    summary: 'a CTPR with opc = 1 (ldisp) only in CTPR2',
    check: (s) =>
      s.ctpr.flatMap((c, i) =>
        when(i !== 1 && unpackCtpr(c).tag !== 0 && unpackCtpr(c).opc === CTPR_OPC_LDISP, () =>
          v('T2', 'soft', `ctpr[${i}]`, c, `e2k-cpu: ldisp prepared in CTPR${i + 1} (only CTPR2 feeds the AAU)`),
        ),
      ),
  },
  {
    id: 'L1',
    severity: 'hard',
    summary: 'LSR bits 61..63 zero; ILCR only lcnt/ecnt/pcnt',
    check: (s) => [
      ...when((s.lsr & LSR_RESERVED_MASK) !== 0n, () =>
        v('L1', 'hard', 'lsr', s.lsr, 'e2k-cpu: LSR/ILCR reserved bits set'),
      ),
      ...when((s.ilcr & ~ILCR_VALID_MASK) !== 0n, () =>
        v('L1', 'hard', 'ilcr', s.ilcr, 'e2k-cpu: LSR/ILCR reserved bits set'),
      ),
    ],
  },
  {
    id: 'L2',
    severity: 'hard',
    summary: 'ISA < 5 => lsr_lcnt and ilcr_lcnt < 2^32',
    check: (s) =>
      s.cfg.isa >= 5
        ? []
        : [
            ...when(s.lsr_lcnt >= U32, () =>
              v('L2', 'hard', 'lsr_lcnt', s.lsr_lcnt, 'e2k-cpu: 64-bit loop counter requires ISA v5+'),
            ),
            ...when(s.ilcr_lcnt >= U32, () =>
              v('L2', 'hard', 'ilcr_lcnt', s.ilcr_lcnt, 'e2k-cpu: 64-bit loop counter requires ISA v5+'),
            ),
          ],
  },
  {
    id: 'L3',
    severity: 'hard',
    summary: 'low 32 bits of lsr_lcnt == lsr[31:0] (same for ILCR)',
    check: (s) => [
      ...when((s.lsr_lcnt & (U32 - 1n)) !== (s.lsr & (U32 - 1n)), () =>
        v('L3', 'hard', 'lsr_lcnt', s.lsr_lcnt, `e2k-cpu: LSR and LSR1 disagree (lsr ${hex(s.lsr)})`),
      ),
      ...when((s.ilcr_lcnt & (U32 - 1n)) !== (s.ilcr & (U32 - 1n)), () =>
        v('L3', 'hard', 'ilcr_lcnt', s.ilcr_lcnt, `e2k-cpu: ILCR and ILCR1 disagree (ilcr ${hex(s.ilcr)})`),
      ),
    ],
  },
];
