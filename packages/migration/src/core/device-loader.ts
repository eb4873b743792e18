import { decodeVmsd } from '@e2k-migrate/vmstate';
import { MigrationStreamError } from '../errors.js';
import { LoaderRegistry, type SectionContext, type SectionLoader } from '../stream/section-loader.js';
import type { DeviceStateHandler, SaveVmHandlers } from './savevm-handlers.js';

/** Largest device section body decoded (an E2K CPU is ~10 KiB; this bounds hostile input). */
export const MAX_DEVICE_SECTION = 1 << 20;

/**
 * Loads a FULL section into a VMState device: decodes the body at the stream's version into the
 * device's `loadTarget()` (QEMU's vmstate_load_state, post_load checks included), then hands the
 * state to the device. A START/PART/END for a device is an error.
 */
export class VmstateSectionLoader implements SectionLoader {
  private readonly device: DeviceStateHandler;

  constructor(device: DeviceStateHandler) {
    this.device = device;
  }

  async load(ctx: SectionContext): Promise<undefined> {
    const s = ctx.section;
    if (s.kind !== 'FULL') {
      throw new MigrationStreamError(
        'E_UNKNOWN_SECTION',
        `section ${s.label} at byte offset ${s.offset} is ${s.kind}, but "${s.idstr}" is a device (FULL only)`,
        { offset: s.offset, section: s.label },
      );
    }
    const d = this.device;
    try {
      const state = await ctx.source.parse(
        (r) => decodeVmsd(d.vmsd, r, s.versionId, d.loadTarget(), { more: true }),
        `${s.idstr} section body`,
        MAX_DEVICE_SECTION,
        { section: s.label },
      );
      d.load(state);
    } catch (err) {
      if (err instanceof MigrationStreamError) throw err;
      const e = err as Error & { code?: string };
      throw new MigrationStreamError(
        'E_DEVICE_DECODE',
        `section ${s.label} at byte offset ${s.offset}: ${e.code ? `${e.code}: ` : ''}${e.message}`,
        { offset: s.offset, section: s.label, cause: err },
      );
    }
    return undefined;
  }
}

/**
 * The destination's loaders for every registered handler: iterable handlers by their load side,
 * devices through VMState, keyed by idstr and instance id as QEMU's find_se does.
 */
export function loaderRegistryOf(handlers: SaveVmHandlers): LoaderRegistry {
  const reg = new LoaderRegistry();
  for (const e of handlers.entries()) {
    if (e.kind === 'live') {
      if (e.load) reg.register(e.idstr, e.load, e.instanceId);
    } else {
      reg.register(e.idstr, new VmstateSectionLoader(e.device), e.instanceId);
    }
  }
  return reg;
}
