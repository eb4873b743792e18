import {
  ByteSource,
  type ExtraChannel,
  loadRamBody,
  MigrationStreamError,
  RAM_CHANNEL_PREEMPT,
  type RamSink,
  type RamState,
  StreamState,
} from '@e2k-migrate/migration';
import { TARGET_PAGE_SIZE } from './postcopy-block.js';

/**
 * Reads the postcopy-preempt channel (spec §9.5, QEMU 7.2): no header, bare RAM records on
 * channel 1 (own CONTINUE memory, own PostcopyTmpPage through `sink`) until the source's final
 * EOS. Resolves at that EOS; rejects with a typed error on a malformed record, a missing EOS,
 * or bytes already received after it.
 */
export async function readPreemptChannel(ch: ExtraChannel, ram: RamState, sink: RamSink): Promise<{ bytes: number }> {
  const state = new StreamState(TARGET_PAGE_SIZE);
  state.postcopyListening = true;
  const src = new ByteSource(ch.chunks(), { channel: 'preempt', yieldEveryMs: 1 });
  try {
    await loadRamBody(src, ram, state, sink, { channel: RAM_CHANNEL_PREEMPT });
    // Nothing may follow the EOS; only what already arrived is checked (a 7.2 source closes the
    // channel only after our SHUT, so waiting for its end here would deadlock).
    if (src.available > 0) {
      throw new MigrationStreamError(
        'E_TRAILING_DATA',
        `preempt channel: byte 0x${(src.buf[src.pos] as number).toString(16).padStart(2, '0')} at byte offset ${src.offset} after its final EOS`,
        { offset: src.offset, channel: 'preempt', record: 'trailing data' },
      );
    }
    return { bytes: src.offset };
  } finally {
    await src.close();
  }
}
