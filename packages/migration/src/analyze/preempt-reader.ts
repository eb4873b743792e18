import type { ByteSource } from '../stream/byte-source.js';
import { loadRamBody, type RamSink } from '../stream/ram-loader.js';
import { RAM_CHANNEL_PREEMPT, type RamState } from '../stream/ram-state.js';
import type { StreamState } from '../stream/stream-state.js';

/**
 * Reads a 7.2 postcopy-preempt channel (spec §9.5): bare RAM records, no header and no sections,
 * with its own CONTINUE bookkeeping (channel 1), ended by one EOS. Later QEMUs end it without EOS,
 * which is accepted. Returns the number of EOS records.
 */
export async function readPreemptChannel(
  src: ByteSource,
  ram: RamState,
  state: StreamState,
  sink: RamSink,
): Promise<number> {
  let eos = 0;
  while (await src.ensure(1)) {
    if (await loadRamBody(src, ram, state, sink, { channel: RAM_CHANNEL_PREEMPT, allowEndWithoutEos: true })) eos++;
  }
  return eos;
}
