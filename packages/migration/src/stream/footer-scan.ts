import { MigrationStreamError } from '../errors.js';
import {
  MIG_CMD_INFO,
  MIG_CMD_MAX_7_2,
  QEMU_VM_COMMAND,
  QEMU_VM_EOF,
  QEMU_VM_SECTION_END,
  QEMU_VM_SECTION_FOOTER,
  QEMU_VM_SECTION_FULL,
  QEMU_VM_SECTION_PART,
  QEMU_VM_SECTION_START,
  QEMU_VM_VMDESCRIPTION,
} from '../wire/constants.js';
import type { ByteSource } from './byte-source.js';
import type { SectionContext, SectionInfo, SectionLoader, SectionLoadResult } from './section-loader.js';
import type { StreamState } from './stream-state.js';

/** Bytes after a candidate footer needed to judge the record that follows (START header max). */
const LOOKAHEAD = 1 + 4 + 1 + 255 + 4 + 4;

/** Default bound on a scanned body (virtio devices reach ~46 KiB; this is generous). */
export const DEFAULT_MAX_SCANNED_BODY = 64 << 20;

/**
 * Finds the length of a section body whose layout is unknown by searching for its footer
 * (`7E` + be32 section id) and accepting a candidate only when a plausible record follows
 * (spec §2.9): end of data, EOF at the end or before a vmdesc, START/FULL with a printable idstr,
 * PART/END of a known section id, or a command QEMU 7.2 knows. Consumes nothing.
 * @returns the body length in bytes.
 */
export async function scanForFooter(
  src: ByteSource,
  section: SectionInfo,
  state: StreamState,
  maxBody = DEFAULT_MAX_SCANNED_BODY,
): Promise<number> {
  const id = section.sectionId;
  const b1 = (id >>> 24) & 0xff;
  const b2 = (id >>> 16) & 0xff;
  const b3 = (id >>> 8) & 0xff;
  const b4 = id & 0xff;
  let from = 0;
  let exhausted = false;
  for (;;) {
    const buf = src.buf;
    const pos = src.pos;
    const avail = src.available;
    let i = from;
    let needMore = false;
    let wantExact = 0;
    while (i + 5 <= avail) {
      const k = buf.indexOf(QEMU_VM_SECTION_FOOTER, pos + i);
      if (k < 0 || k + 5 > pos + avail) {
        i = avail;
        break;
      }
      i = k - pos;
      if (buf[k + 1] === b1 && buf[k + 2] === b2 && buf[k + 3] === b3 && buf[k + 4] === b4) {
        const after = i + 5;
        const judge = lookaheadNeeded(buf, pos + after, avail - after);
        if (avail - after < judge && !exhausted) {
          needMore = true;
          wantExact = after + judge;
          break;
        }
        if (plausibleNext(buf, pos + after, avail - after, exhausted, state)) return i;
      }
      i++;
    }
    from = Math.max(0, Math.min(i, avail - 4));
    if (!needMore && exhausted) {
      throw new MigrationStreamError(
        'E_FOOTER_NOT_FOUND',
        `no footer for section ${section.label} found after its body start at byte offset ${section.bodyOffset} (input ends at ${src.offset + avail})`,
        { offset: section.bodyOffset, section: section.label, record: 'section body' },
      );
    }
    if (avail > maxBody + 5 + LOOKAHEAD) {
      throw new MigrationStreamError(
        'E_FOOTER_NOT_FOUND',
        `no footer for section ${section.label} within ${maxBody} bytes of byte offset ${section.bodyOffset}`,
        { offset: section.bodyOffset, section: section.label, record: 'section body' },
      );
    }
    // Never ask for more than must exist: a live source may send nothing else until answered.
    if (needMore) exhausted = !(await src.ensure(wantExact));
    else exhausted = !(await src.more());
  }
}

/**
 * Bytes after a candidate footer needed to judge the record there: the type byte, then EOF +
 * the vmdesc byte, a START/FULL header up to its version (the idstr length says how long), or
 * the 5 bytes of PART/END/COMMAND.
 */
function lookaheadNeeded(buf: Uint8Array, q: number, n: number): number {
  if (n < 1) return 1;
  switch (buf[q]) {
    case QEMU_VM_EOF:
      return 2;
    case QEMU_VM_SECTION_START:
    case QEMU_VM_SECTION_FULL:
      return n < 6 ? 6 : 6 + (buf[q + 5] as number) + 8;
    case QEMU_VM_SECTION_PART:
    case QEMU_VM_SECTION_END:
    case QEMU_VM_COMMAND:
      return 5;
    default:
      return 1;
  }
}

/** Whether the bytes at `buf[q ..]` (n of them; `atEnd` = nothing follows) start a record QEMU would accept there. */
function plausibleNext(buf: Uint8Array, q: number, n: number, atEnd: boolean, state: StreamState): boolean {
  if (n === 0) return atEnd;
  const t = buf[q] as number;
  switch (t) {
    case QEMU_VM_EOF:
      return (n === 1 && atEnd) || buf[q + 1] === QEMU_VM_VMDESCRIPTION;
    case QEMU_VM_SECTION_START:
    case QEMU_VM_SECTION_FULL: {
      if (n < 6) return false;
      const id = be32(buf, q + 1);
      const len = buf[q + 5] as number;
      if (id > 0xffff || len === 0 || n < 6 + len + 8) return false;
      for (let i = 0; i < len; i++) {
        const c = buf[q + 6 + i] as number;
        if (c < 0x20 || c > 0x7e) return false;
      }
      const instance = be32(buf, q + 6 + len);
      const version = be32(buf, q + 10 + len);
      return instance <= 0xffff && version <= 0xffff;
    }
    case QEMU_VM_SECTION_PART:
    case QEMU_VM_SECTION_END:
      return n >= 5 && state.knownSectionIds.has(be32(buf, q + 1));
    case QEMU_VM_COMMAND: {
      if (n < 5) return false;
      const cmd = ((buf[q + 1] as number) << 8) | (buf[q + 2] as number);
      const len = ((buf[q + 3] as number) << 8) | (buf[q + 4] as number);
      const info = MIG_CMD_INFO[cmd];
      if (info === undefined || cmd === 0 || cmd >= MIG_CMD_MAX_7_2) return false;
      if (typeof info.len === 'number') return len === info.len;
      if (Array.isArray(info.len)) return info.len.includes(len);
      return len > 0;
    }
    default:
      return false;
  }
}

function be32(b: Uint8Array, i: number): number {
  return (
    (((b[i] as number) << 24) | ((b[i + 1] as number) << 16) | ((b[i + 2] as number) << 8) | (b[i + 3] as number)) >>> 0
  );
}

/** Receives the raw body of a section whose length was found by {@link scanForFooter}. */
export type RawBodyHandler = (section: SectionInfo, body: Uint8Array, lengthGuessed: boolean) => void | Promise<void>;

/**
 * A loader for sections whose format is unknown: finds the body by footer scan and hands the raw
 * bytes (a view, valid during the call) to `onBody`. The length is a guess (spec §2.9).
 */
export class FooterScanLoader implements SectionLoader {
  private readonly onBody: RawBodyHandler | undefined;
  private readonly maxBody: number;

  constructor(onBody?: RawBodyHandler, maxBody = DEFAULT_MAX_SCANNED_BODY) {
    this.onBody = onBody;
    this.maxBody = maxBody;
  }

  async load(ctx: SectionContext): Promise<SectionLoadResult> {
    const src: ByteSource = ctx.source;
    const len = await scanForFooter(src, ctx.section, ctx.state, this.maxBody);
    await this.onBody?.(ctx.section, src.buf.subarray(src.pos, src.pos + len), true);
    src.consume(len);
    return { lengthGuessed: true };
  }
}
