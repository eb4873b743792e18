import { ByteWriter } from '@e2k-migrate/vmstate';
import { MigrationStreamError } from '../errors.js';
import { DEFAULT_MAX_SCANNED_BODY, scanForFooter } from '../stream/footer-scan.js';
import type { SectionContext, SectionLoader, SectionLoadResult } from '../stream/section-loader.js';
import { QEMU_VM_EOF } from '../wire/constants.js';
import { encodeFooter, encodeSectionHeader } from '../wire/section.js';

/** Where one device section sits inside the stored device-state bytes. */
export interface DeviceSectionEntry {
  idstr: string;
  instanceId: number;
  versionId: number;
  sectionId: number;
  /** Offset of the section's type byte inside the device-state bytes. */
  offset: number;
  /** Header + body + footer bytes. */
  length: number;
}

/**
 * Keeps the device state of a precopy stream as opaque bytes: every FULL section after the last
 * `ram` section, header, body and footer exactly as they were on the wire, then the EOF byte.
 * Bodies carry no length (spec §2.9), so each one is delimited by a validated footer scan; the
 * bytes kept are re-assembled from the decoded header (whose encoding is unique), the raw body and
 * the footer, i.e. identical to the stream from the end of the last ram section through EOF.
 */
export class DeviceStateCollector implements SectionLoader {
  readonly sections: DeviceSectionEntry[] = [];
  private readonly parts: Uint8Array[] = [];
  private length = 0;
  private eofSeen = false;
  private readonly maxBytes: number;

  /** @param maxBytes bound on all device state together (hostile streams). */
  constructor(maxBytes = DEFAULT_MAX_SCANNED_BODY) {
    this.maxBytes = maxBytes;
  }

  /** Bytes collected so far. */
  get bytes(): number {
    return this.length;
  }

  /** True once a device section was collected (a later ram section is then a layout error). */
  get started(): boolean {
    return this.sections.length > 0;
  }

  async load(ctx: SectionContext): Promise<SectionLoadResult> {
    const s = ctx.section;
    if (s.kind !== 'FULL' || s.depth !== 0) {
      throw new MigrationStreamError(
        'E_STORE_LAYOUT',
        `section ${s.label} (${s.kind}) at byte offset ${s.offset}: a stored migration keeps device state only as FULL sections after the last ram section`,
        { offset: s.offset, section: s.label },
      );
    }
    const src = ctx.source;
    const len = await scanForFooter(src, s, ctx.state, this.maxBytes);
    const head = encodeSectionHeader({
      kind: 'FULL',
      sectionId: s.sectionId,
      idstr: s.idstr,
      instanceId: s.instanceId,
      versionId: s.versionId,
    });
    const total = head.length + len + 5;
    if (this.length + total > this.maxBytes) {
      throw new MigrationStreamError(
        'E_BAD_LENGTH',
        `device state passes ${this.maxBytes} bytes at section ${s.label} (byte offset ${s.offset})`,
        { offset: s.offset, section: s.label },
      );
    }
    const w = new ByteWriter(total);
    w.bytes(head.written()).bytes(src.buf.subarray(src.pos, src.pos + len));
    encodeFooter(s.sectionId, w);
    this.parts.push(w.written());
    this.sections.push({
      idstr: s.idstr,
      instanceId: s.instanceId,
      versionId: s.versionId,
      sectionId: s.sectionId,
      offset: this.length,
      length: total,
    });
    this.length += total;
    src.consume(len);
    return { lengthGuessed: true };
  }

  /** Appends the EOF byte that ends the device state. */
  eof(): void {
    if (this.eofSeen) return;
    this.eofSeen = true;
    this.parts.push(Uint8Array.of(QEMU_VM_EOF));
    this.length += 1;
  }

  /** The device state from the end of the last ram section through EOF. */
  result(): Uint8Array {
    const out = new Uint8Array(this.length);
    let o = 0;
    for (const p of this.parts) {
      out.set(p, o);
      o += p.length;
    }
    return out;
  }
}
