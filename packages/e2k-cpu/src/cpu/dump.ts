import { E2K_GR_COUNT, E2K_NR_COUNT, E2K_PREG_COUNT } from './constants.js';
import {
  hex,
  type LsrFields,
  physicalPredicate,
  unpackIlcr,
  unpackLsr,
  unpackRwap,
  unpackStackPointer,
} from './packing.js';
import { DESCRIPTOR_NAMES, type E2kCpuState, modelNameOf } from './state.js';

const h64 = (v: bigint) => hex(v, 16);
const h32 = (v: number) => hex(v, 8);

/**
 * An `info registers`-style dump in qemu-e2k's cpu-dump order (spec §3): control, stacks and
 * descriptors, loop counters, window/rotation, predicates after rotation, then `%r`, `%b`, `%g`.
 */
export function formatRegisters(s: E2kCpuState, cpuIndex = 0): string {
  const out: string[] = [];
  out.push(`CPU#${cpuIndex} ${modelNameOf(s.cfg.model)} (ISA v${s.cfg.isa}${s.cfg.tags ? ', tags' : ''})`);
  // 1. control and status
  out.push(` ip    = ${h64(s.ip)}  nip  = ${h64(s.nip)}`);
  s.ctpr.forEach((c, i) => {
    out.push(` ctpr${i + 1} = ${h64(c)}  (tag ${Number((c >> 54n) & 7n)}, opc ${Number((c >> 57n) & 3n)})`);
  });
  out.push(` sbr   = ${h64(s.sbr)}  osr0 = ${h64(s.osr0)}`);
  out.push(` psr   = ${hex(s.psr, 2)}  upsr = ${hex(s.upsr, 3)}  cuir = ${hex(s.cuir, 5)}`);
  // 2. stacks and descriptors
  const u = unpackRwap(s.usd_lo, s.usd_hi);
  out.push(
    ` usd   = ${h64(u.base + BigInt(u.curptr))}  base ${h64(u.base)} curptr ${h32(u.curptr)} size ${h32(u.size)} ${rw(u.read, u.write)} itag ${u.itag}`,
  );
  for (const [name, lo, hi] of [
    ['pcsp', s.pcsp_lo, s.pcsp_hi],
    ['psp', s.psp_lo, s.psp_hi],
  ] as const) {
    const p = unpackStackPointer(lo, hi);
    out.push(
      ` ${name.padEnd(5)} = ${h64(p.base + BigInt(p.index))}  base ${h64(p.base)} index ${h32(p.index)} size ${h32(p.size)} ${rw(p.read, p.write)} itag ${p.itag}`,
    );
  }
  out.push(` psp.tagbase = ${h64(s.psp_tagbase)}`);
  for (const n of DESCRIPTOR_NAMES.slice(0, 4)) out.push(` ${n.padEnd(5)} = lo ${h64(s[n].lo)} hi ${h64(s[n].hi)}`);
  // 3. loop counters
  const l: LsrFields = unpackLsr(s.lsr);
  const il = unpackIlcr(s.ilcr);
  out.push(
    ` lcnt  = ${s.lsr_lcnt}  pcnt = ${l.pcnt}  ecnt = ${l.ecnt}  vlc = ${l.vlc}  ldmc = ${l.ldmc}  ldovl = ${l.ldovl}`,
  );
  out.push(
    ` ilcnt = ${s.ilcr_lcnt}  ipcnt = ${il.pcnt}  iecnt = ${il.ecnt}  over = ${l.over}  semc = ${l.semc}  strmd = ${l.strmd}`,
  );
  // 4. window and rotation
  out.push(
    ` wsz = ${s.wd_size}  wpsz = ${s.wd_psize}  wfx = ${s.wd_fx}  wdbl = ${s.wdbl}  rbs = ${s.bn_base}  rsz = ${s.bn_size}  rcur = ${s.bn_cur}  psz = ${s.bp_size}  pcur = ${s.bp_cur}`,
  );
  // 5. predicates after rotation
  const preds: string[] = [];
  for (let i = 0; i < E2K_PREG_COUNT; i++) {
    const p = BigInt(physicalPredicate(i, s.bp_size, s.bp_cur) * 2);
    preds.push(`${(s.pregs >> p) & 1n}${(s.pregs >> (p + 1n)) & 1n ? '*' : ''}`);
  }
  out.push(` pred[0..31] = ${preds.join(' ')}`);
  // 6. registers
  for (let i = 0; i < Math.min(s.wd_size, E2K_NR_COUNT); i++) out.push(reg(s, `%r${i}`, i));
  if (s.bn_base + s.bn_size <= s.wd_size && s.bn_size > 0) {
    for (let i = 0; i < s.bn_size; i++) out.push(reg(s, `%b[${i}]`, s.bn_base + ((s.bn_cur + i) % s.bn_size)));
  }
  for (let i = 0; i < E2K_GR_COUNT; i++) out.push(reg(s, `%g${i}`, E2K_NR_COUNT + i));
  return `${out.join('\n')}\n`;
}

function rw(r: boolean, w: boolean): string {
  return `${r ? 'R' : '-'}${w ? 'W' : '-'}`;
}

function reg(s: E2kCpuState, name: string, i: number): string {
  const t = s.rf_tag[i] ?? 0;
  const hi = s.rf_hi[i] ?? 0n;
  return ` ${name.padEnd(7)} <${(t >> 2) & 3}${t & 3}> ${h64(s.rf_lo[i] ?? 0n)}${hi !== 0n ? `  hi ${h64(hi)}` : ''}`;
}

/** A JSON-safe value: bigints as `0x…` strings, typed arrays as plain arrays. */
export type JsonValue = string | number | boolean | null | JsonValue[] | { [k: string]: JsonValue };

/** The CPU state as JSON (64-bit values as hex strings, `cfg.model` as its name), plus decoded views. */
export function registersToJson(s: E2kCpuState): { [k: string]: JsonValue } {
  const raw = toJson(s) as { [k: string]: JsonValue };
  raw.cfg = { ...(raw.cfg as { [k: string]: JsonValue }), model: modelNameOf(s.cfg.model) };
  return {
    ...raw,
    decoded: toJson({
      lsr: unpackLsr(s.lsr),
      ilcr: unpackIlcr(s.ilcr),
      usd: unpackRwap(s.usd_lo, s.usd_hi),
      psp: unpackStackPointer(s.psp_lo, s.psp_hi),
      pcsp: unpackStackPointer(s.pcsp_lo, s.pcsp_hi),
    }),
  };
}

function toJson(v: unknown): JsonValue {
  if (typeof v === 'bigint') return hex(v);
  if (v instanceof Uint8Array) return Array.from(v);
  if (Array.isArray(v)) return v.map(toJson);
  if (v !== null && typeof v === 'object') {
    const o: { [k: string]: JsonValue } = {};
    for (const [k, x] of Object.entries(v)) o[k] = toJson(x);
    return o;
  }
  if (typeof v === 'string' || typeof v === 'number' || typeof v === 'boolean') return v;
  return null;
}
