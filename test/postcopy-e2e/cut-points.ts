/**
 * Where the recovery suites cut the connection: byte offsets, deterministic, not times.
 *
 * Main-channel cuts are counted from the end of the postcopy package (spec §9.2 step 7): the
 * destination has read POSTCOPY_RUN and runs the guest, so from there on a lost connection
 * pauses both sides instead of failing them (QEMU's rule: only a running postcopy pauses; a
 * cut inside the package leaves the destination failed and the guest only on the source).
 * After the package come PING(4) (9 bytes), the first PART section header (5 bytes) and RAM
 * records (`be64 offset|flags`, the block name `07 "e2k.ram"` on a block's first record, 4096
 * bytes of data). A recovery connection starts with RECV_BITMAP (13 bytes: `08 000a 0008 07
 * "e2k.ram"`), then POSTCOPY_RESUME (5 bytes), then the rest of the stream.
 */

export const PING_BYTES = 9;
export const PART_HEADER_BYTES = 5;
/** The first postcopy record: header, block name. */
export const FIRST_RECORD_HEADER = 8 + 1 + 'e2k.ram'.length;
export const RECV_BITMAP_BYTES = 5 + 1 + 'e2k.ram'.length;
export const POSTCOPY_RESUME_BYTES = 5;

const KiB = 1024;
const MiB = 1024 * KiB;

export interface CutCase {
  name: string;
  kind: 'anonymous' | 'hugetlb';
  preempt: boolean;
  /** The first cut: bytes after the package end on the main channel (all connections cut), … */
  afterPackage?: number;
  /** … or a byte offset on the postcopy-preempt connection (only that connection is cut). */
  preemptOffset?: number;
  /** A second cut on the first recovery's main connection, at this offset from its start. */
  recovery?: number;
}

const v = (name: string, afterPackage: number, recovery?: number): CutCase => ({
  name,
  kind: 'anonymous',
  preempt: false,
  afterPackage,
  ...(recovery !== undefined ? { recovery } : {}),
});

/** 18 migrations, 24 cut points: 18 first cuts, 6 of them followed by a cut of the recovery (plus wrap-up.test.ts). */
export const CUT_CASES: readonly CutCase[] = [
  v('right after the package: RUN read, PING(4) lost', 0, 5),
  v('inside PING(4)', 5, RECV_BITMAP_BYTES),
  v('after PING(4), before the first section', PING_BYTES, RECV_BITMAP_BYTES + POSTCOPY_RESUME_BYTES),
  v('inside the first PART section header', PING_BYTES + 3, 256 * KiB + 3),
  v("inside the first page's data", PING_BYTES + PART_HEADER_BYTES + FIRST_RECORD_HEADER + 1000, 2 * MiB + 1),
  v('64 KiB into postcopy', 64 * KiB + 1),
  v('512 KiB into postcopy', 512 * KiB + 17),
  v('1 MiB into postcopy', MiB),
  v('2 MiB into postcopy', 2 * MiB + 3),
  v('4 MiB into postcopy, inside a record header', 4 * MiB + 4101),
  v('8 MiB into postcopy', 8 * MiB + 5),
  v('12 MiB into postcopy', 12 * MiB + 7),
  { name: 'preempt: after PING(4)', kind: 'anonymous', preempt: true, afterPackage: PING_BYTES },
  {
    name: 'preempt: 1 MiB into postcopy, then the recovery handshake',
    kind: 'anonymous',
    preempt: true,
    afterPackage: MiB + 11,
    recovery: RECV_BITMAP_BYTES,
  },
  { name: 'preempt: 5 MiB into postcopy', kind: 'anonymous', preempt: true, afterPackage: 5 * MiB },
  {
    name: 'preempt connection alone, inside its 4th page',
    kind: 'anonymous',
    preempt: true,
    preemptOffset: 3 * (8 + 4096) + 1000,
  },
  { name: '2 MiB pages: inside a huge page', kind: 'hugetlb', preempt: false, afterPackage: 3 * MiB + 123 },
  {
    name: '2 MiB pages, preempt connection alone: inside its first huge page',
    kind: 'hugetlb',
    preempt: true,
    preemptOffset: MiB + 77,
  },
];
