import { ByteReader, type VmdescDevice } from '@e2k-migrate/vmstate';
import { MigrationStreamError } from '../errors.js';
import { scanForFooter } from '../stream/footer-scan.js';
import type { SectionContext, SectionInfo, SectionLoader, SectionLoadResult } from '../stream/section-loader.js';
import { QEMU_VM_SECTION_FOOTER } from '../wire/constants.js';
import { decodeDeviceBody, type StateMap } from './vmdesc-decode.js';
import type { VmdescProvider } from './vmdesc-provider.js';

/** Largest device body decoded through a vmdesc. */
const MAX_DEVICE_BODY = 256 << 20;

/** One non-RAM section as the analyzer saw it. */
export interface DeviceSection {
  section: SectionInfo;
  length: number;
  /** Found by footer scan (no description): the length is a heuristic guess (spec §2.9). */
  lengthGuessed: boolean;
  /** Decoded through the vmdesc, in analyze-migration.py's shape. */
  value: StateMap | undefined;
  /** Raw body bytes when it could not be decoded. */
  raw: Uint8Array | undefined;
  /** Why a vmdesc entry did not decode the body, if one was tried. */
  decodeError?: string;
}

/**
 * The analyzer's loader for every section that is not `ram`: decodes the body with its vmdesc
 * entry when there is one (exact length, checked against the footer), and otherwise finds the
 * body by footer scan and keeps the raw bytes (length marked as a guess).
 */
export class DeviceLoader implements SectionLoader {
  private readonly provider: VmdescProvider;
  private readonly onSection: (d: DeviceSection) => void;

  constructor(provider: VmdescProvider, onSection: (d: DeviceSection) => void) {
    this.provider = provider;
    this.onSection = onSection;
  }

  async load(ctx: SectionContext): Promise<SectionLoadResult> {
    const src = ctx.source;
    const info = ctx.section;
    await this.provider.ensure(src, ctx.state);
    const device = info.kind === 'FULL' ? this.provider.lookup(info) : undefined;
    let decodeError: string | undefined;
    if (device !== undefined) {
      const start = src.offset;
      try {
        const value = await src.parse(
          (r) => decodeAndCheckFooter(r, device, info, ctx.state.sectionFooters),
          `device ${info.label}`,
          MAX_DEVICE_BODY,
          {
            section: info.label,
          },
        );
        this.onSection({ section: info, length: src.offset - start, lengthGuessed: false, value, raw: undefined });
        return {};
      } catch (err) {
        if (
          !(err instanceof MigrationStreamError) ||
          !['E_DEVICE_DECODE', 'E_BAD_VMDESC', 'E_FOOTER_MISMATCH'].includes(err.code)
        ) {
          throw err;
        }
        decodeError = err.message;
      }
    }
    const len = await scanForFooter(src, info, ctx.state);
    const raw = src.buf.slice(src.pos, src.pos + len);
    src.consume(len);
    this.onSection({ section: info, length: len, lengthGuessed: true, value: undefined, raw, decodeError });
    return { lengthGuessed: true };
  }
}

/** Decodes a body and checks that the footer of the same section follows (not consumed). */
function decodeAndCheckFooter(r: ByteReader, device: VmdescDevice, info: SectionInfo, footers: boolean): StateMap {
  const value = decodeDeviceBody(r, device);
  if (footers) {
    r.need(5, 'section footer');
    const p = r.position;
    const b = r.bytes;
    const id =
      (((b[p + 1] as number) << 24) |
        ((b[p + 2] as number) << 16) |
        ((b[p + 3] as number) << 8) |
        (b[p + 4] as number)) >>>
      0;
    if (b[p] !== QEMU_VM_SECTION_FOOTER || id !== info.sectionId) {
      throw new MigrationStreamError(
        'E_FOOTER_MISMATCH',
        `decoding ${info.label} with its vmdesc entry ends at byte offset ${r.offset}, which is not its footer`,
        { offset: r.offset, section: info.label },
      );
    }
  }
  return value;
}

/** Re-decodes a raw body (kept while no vmdesc was known) once the vmdesc has arrived. */
export function decodeStoredBody(raw: Uint8Array, device: VmdescDevice, at: number): StateMap | undefined {
  const r = new ByteReader(raw, at);
  try {
    const v = decodeDeviceBody(r, device);
    return r.atEnd ? v : undefined;
  } catch {
    return undefined;
  }
}
