/**
 * E2K constants under the names qemu-e2k and the MCST kernel headers use (spec/e2k-cpu.md §1).
 */

/** Procedure (window) registers in the register file: RF indices 0..223. */
export const E2K_NR_COUNT = 224;
/** Global registers %g0..%g31: RF indices 224..255. */
export const E2K_GR_COUNT = 32;
/** Rotatable "based globals" %g24..%g31. */
export const E2K_BGR_COUNT = 8;
/** Register-file entries (each a 128-bit `lo`/`hi` pair plus a tag byte). */
export const E2K_REG_COUNT = E2K_NR_COUNT + E2K_GR_COUNT;
/** Predicates in the predicate file (2 bits each in `pregs`). */
export const E2K_PREG_COUNT = 32;

/** Target page size: 4 KiB (`TARGET_PAGE_BITS` 12). */
export const TARGET_PAGE_BITS = 12;
export const TARGET_PAGE_SIZE = 1 << TARGET_PAGE_BITS;

/** Virtual address bits: 48 on e2k64, 32 on e2k32. */
export const E2K_VA_BITS_64 = 48;
export const E2K_VA_BITS_32 = 32;

/** Reserved-bit masks of the status registers (§1.6, §1.2). */
export const PSR_MASK = 0x7f;
export const UPSR_MASK = 0x7ff;
export const CUIR_MASK = 0x1ffff;
export const BGR_MASK = 0x7ff;

/** PSR bits. */
export const PSR_PM = 0x01;
export const PSR_IE = 0x02;
export const PSR_SGE = 0x04;
export const PSR_NMIE = 0x20;

/** UPSR bits. */
export const UPSR_FE = 0x01;
export const UPSR_IE = 0x20;
export const UPSR_NMIE = 0x80;
/** UPSR fsm/impt/iuc (bits 8..10) exist only from ISA v3 (rule P2). */
export const UPSR_V3_BITS = 0x700;

/** FPU reset values (§1.8). */
export const FPCR_RESET = 0x37f;
export const PFPFR_RESET = 0x1f80;

/** CTPR packing (§1.3): bits 48..53 and 61..63 are reserved. */
export const CTPR_RESERVED_MASK = 0xe03f_0000_0000_0000n;
export const CTPR_TAG_SHIFT = 54n;
export const CTPR_OPC_SHIFT = 57n;
export const CTPR_IPD_SHIFT = 59n;
/** CTPR tags qemu produces: none, return, disp, sdisp. */
export const CTPR_QEMU_TAGS: readonly number[] = [0, 2, 3, 5];
export const CTPR_OPC_DISP = 0;
export const CTPR_OPC_LDISP = 1;
export const CTPR_OPC_RETURN = 3;

/** LSR layout [K]: bits 61..63 reserved. ILCR: only lcnt [31:0], ecnt [36:32], pcnt [52:48]. */
export const LSR_RESERVED_MASK = 0xe000_0000_0000_0000n;
export const ILCR_VALID_MASK = 0x001f_001f_ffff_ffffn;

/** PSP/PCSP lo word: readable bit 59, writable bit 60 (§1.5). */
export const PSP_LO_READ = 1n << 59n;
export const PSP_LO_WRITE = 1n << 60n;
/** USD lo protected bit 58. */
export const USD_LO_PROTECTED = 1n << 58n;
/** RWAP write mask: base [47:0] and bits 58..60 (rule M2). */
export const RWAP_LO_MASK = 0x1c00_ffff_ffff_ffffn;
export const ADDR48_MASK = 0xffff_ffff_ffffn;

/** Size of one chain-stack record (`E2KCrs`, 4 × u64). */
export const E2K_CRS_SIZE = 32;

/** linux-user fake kernel page (§1.5). */
export const E2K_FAKE_KERN_START = 0xe200_0000_0000n;
export const E2K_FAKE_KERN_END = 0xe300_0000_0000n;
export const E2K_SYSCALL_ADDR_STEP = 0x800n;
export const E2K_SYSRET_ADDR = 0x15700n;
export const E2K_SIGRET_ADDR = 0x15800n;
export const E2K_SYSRET_BACKTRACE_ADDR = 0x15900n;

/** AASR.lds values (0 NULL, 1 READY, 3 ACTIVE, 5 STOPPED) and the only bits AASR may hold. */
export const AASR_LDS_VALUES: readonly number[] = [0, 1, 3, 5];
export const AASR_VALID_MASK = 0x3e0;

/** `cfg.mode` values. */
export const E2K_MODE_SYSTEM = 0;
export const E2K_MODE_USER = 1;

/** Length of the NUL-padded `cfg.model` buffer on the wire. */
export const E2K_MODEL_NAME_LEN = 32;
