/**
 * The Array Access Unit state (spec/e2k-cpu.md §1.9), in the shape the `e2k-cpu/aau` subsection
 * carries. The probe caches (`last_page`, `last_page_valid`) are derived and not modelled.
 */

/** An AAD array descriptor (lo: base/tag/mb/ed/rw, hi: size). */
export interface E2kAad {
  lo: bigint;
  hi: bigint;
}

/** One entry of a loaded array-prefetch program (`fapb` instruction and its indices). */
export interface E2kAauArea {
  /** The 64-bit `fapb` instruction. */
  pi: bigint;
  /** Current data index. */
  cdi: number;
  /** Loaded index (AALDI). */
  ldi: number;
}

export interface E2kAauState {
  /** AASR: stb 5, iab 6, lds [9:7]. */
  aasr: number;
  aafstr: number;
  aaldm: bigint;
  aaldv: bigint;
  /** AASTI0..15. */
  aasti: number[];
  aasti_tags: number;
  /** AAIND0..15. */
  aaind: number[];
  aaind_tags: number;
  /** AAINCR0..7; `aaincr[0]` is 1 after reset. */
  aaincr: number[];
  aaincr_tags: number;
  /** AAD0..31. */
  aad: E2kAad[];
  /** AALDA0..63 (one byte each). */
  aalda: number[];
  /** Left and right channel prefetch programs, 32 areas each. */
  apb_l: E2kAauArea[];
  apb_r: E2kAauArea[];
}

export const AAU_STI_COUNT = 16;
export const AAU_IND_COUNT = 16;
export const AAU_INCR_COUNT = 8;
export const AAU_AAD_COUNT = 32;
export const AAU_LDA_COUNT = 64;
export const AAU_AREA_COUNT = 32;

/** The AAU as a CPU reset leaves it: everything zero except `aaincr[0] = 1`. */
export function resetAau(): E2kAauState {
  const area = (): E2kAauArea[] => Array.from({ length: AAU_AREA_COUNT }, () => ({ pi: 0n, cdi: 0, ldi: 0 }));
  const aaincr = new Array<number>(AAU_INCR_COUNT).fill(0);
  aaincr[0] = 1;
  return {
    aasr: 0,
    aafstr: 0,
    aaldm: 0n,
    aaldv: 0n,
    aasti: new Array<number>(AAU_STI_COUNT).fill(0),
    aasti_tags: 0,
    aaind: new Array<number>(AAU_IND_COUNT).fill(0),
    aaind_tags: 0,
    aaincr,
    aaincr_tags: 0,
    aad: Array.from({ length: AAU_AAD_COUNT }, () => ({ lo: 0n, hi: 0n })),
    aalda: new Array<number>(AAU_LDA_COUNT).fill(0),
    apb_l: area(),
    apb_r: area(),
  };
}

/** The `needed` predicate of `e2k-cpu/aau`: true when the AAU differs from its reset state. */
export function aauDiffersFromReset(a: E2kAauState): boolean {
  if (a.aasr !== 0 || a.aafstr !== 0 || a.aaldm !== 0n || a.aaldv !== 0n) return true;
  if (a.aasti_tags !== 0 || a.aaind_tags !== 0 || a.aaincr_tags !== 0) return true;
  if (a.aasti.some((v) => v !== 0) || a.aaind.some((v) => v !== 0)) return true;
  if (a.aaincr[0] !== 1 || a.aaincr.some((v, i) => i > 0 && v !== 0)) return true;
  if (a.aad.some((d) => d.lo !== 0n || d.hi !== 0n)) return true;
  if (a.aalda.some((v) => v !== 0)) return true;
  const areaSet = (x: E2kAauArea) => x.pi !== 0n || x.cdi !== 0 || x.ldi !== 0;
  return a.apb_l.some(areaSet) || a.apb_r.some(areaSet);
}
