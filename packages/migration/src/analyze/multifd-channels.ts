import * as zlib from 'node:zlib';
import { MigrationStreamError, toStreamError, UnsupportedFeatureError } from '../errors.js';
import type { ByteSource } from '../stream/byte-source.js';
import type { RamBlockInfo, RamState } from '../stream/ram-state.js';
import { MULTIFD_FLAG_SYNC, MULTIFD_INIT_PACKET_SIZE } from '../wire/constants.js';
import {
  decodeMultifdInit,
  decodeMultifdPacketHeader,
  type MultifdInit,
  type MultifdPacketHeader,
  multifdCompression,
  multifdHeaderSize,
  multifdPayloadLength,
} from '../wire/multifd.js';
import type { MultifdChannelSummary } from './summary.js';

/** Receives the pages of a multifd packet, in offset-array order (views valid during the call). */
export type MultifdPageSink = (block: RamBlockInfo, offset: number, page: Uint8Array) => void;

/** One multifd connection: init packet, then packet headers + payloads (spec §7). */
export class MultifdChannel {
  readonly source: ByteSource;
  readonly name: string;
  init: MultifdInit | undefined;
  readonly stats: MultifdChannelSummary;
  private header: MultifdPacketHeader | undefined;
  private headerAt = 0;
  private inflater: Inflater | undefined;
  /** SYNC packets seen so far. */
  syncs = 0;

  constructor(source: ByteSource, name: string) {
    this.source = source;
    this.name = name;
    this.stats = {
      file: name,
      id: -1,
      uuid: '',
      compression: 'none',
      packets: 0,
      sync_packets: 0,
      pages: 0,
      sync_packets_with_pages: 0,
      trailing_packets: 0,
      bytes: 0,
    };
  }

  async open(): Promise<void> {
    const init = await this.source.parse((r) => decodeMultifdInit(r), 'multifd init packet', MULTIFD_INIT_PACKET_SIZE, {
      channel: this.source.channel,
    });
    this.init = init;
    this.stats.id = init.id;
    this.stats.uuid = Buffer.from(init.uuid).toString('hex');
    this.stats.bytes += MULTIFD_INIT_PACKET_SIZE;
  }

  /** The next packet header (read if needed), or undefined at the end of the channel. */
  async peek(tps: number): Promise<MultifdPacketHeader | undefined> {
    if (this.header) return this.header;
    const src = this.source;
    if (!(await src.ensure(1))) return undefined;
    this.headerAt = src.offset;
    this.header = await src.parse(
      (r) => decodeMultifdPacketHeader(r, tps),
      'multifd packet header',
      multifdHeaderSize(tps),
      {
        channel: src.channel,
      },
    );
    return this.header;
  }

  /**
   * Consumes the current packet, checking its block and offsets against the RAM blocks and
   * handing each page to `sink`. Returns the header.
   */
  async take(tps: number, ram: RamState, sink: MultifdPageSink, trailing: boolean): Promise<MultifdPacketHeader> {
    const h = this.header;
    if (h === undefined) throw new Error('take() without a peeked packet');
    this.header = undefined;
    const src = this.source;
    const at = this.headerAt;
    const len = multifdPayloadLength(h, tps);
    this.stats.packets++;
    this.stats.bytes += multifdHeaderSize(tps) + len;
    if (trailing) this.stats.trailing_packets++;
    if (h.flags & MULTIFD_FLAG_SYNC) {
      this.stats.sync_packets++;
      this.syncs++;
      if (h.normalPages > 0) this.stats.sync_packets_with_pages++;
    }
    if (h.normalPages === 0) return h;
    const block = ram.get(h.block);
    if (block === undefined) {
      throw new MigrationStreamError(
        'E_MULTIFD',
        `multifd packet at byte offset ${at} names unknown RAM block "${h.block}"`,
        {
          offset: at + 64,
          channel: src.channel,
          record: 'multifd packet',
        },
      );
    }
    for (const o of h.offsets) {
      if (o % tps !== 0 || o + tps > block.usedLength) {
        throw new MigrationStreamError(
          'E_BAD_RAM_OFFSET',
          `multifd packet at byte offset ${at}: page offset 0x${o.toString(16)} is outside block "${block.name}" (used_length 0x${block.usedLength.toString(16)})`,
          { offset: at, channel: src.channel, record: 'multifd packet' },
        );
      }
    }
    const comp = multifdCompression(h.flags);
    this.stats.compression = comp;
    try {
      await src.need(len, 'multifd packet payload');
      let data = src.buf.subarray(src.pos, src.pos + len);
      if (comp !== 'none') {
        this.inflater ??= new Inflater(comp, at);
        data = await this.inflater.decode(data, h.normalPages * tps, at);
      }
      for (let i = 0; i < h.normalPages; i++)
        sink(block, h.offsets[i] as number, data.subarray(i * tps, (i + 1) * tps));
      src.consume(len);
    } catch (err) {
      throw toStreamError(err, { channel: src.channel, record: 'multifd packet payload' });
    }
    this.stats.pages += h.normalPages;
    return h;
  }
}

/** Per-channel zlib/zstd decompression: one stream for the whole migration, sync-flushed per packet. */
class Inflater {
  private readonly stream: zlib.Inflate | zlib.Gunzip;
  private readonly parts: Buffer[] = [];
  private failure: Error | undefined;

  constructor(method: 'zlib' | 'zstd', at: number) {
    if (method === 'zstd') {
      const z = zlib as unknown as { createZstdDecompress?: () => zlib.Inflate };
      if (typeof z.createZstdDecompress !== 'function') {
        throw new UnsupportedFeatureError(
          'multifd-compression zstd',
          at,
          `this Node.js (${process.version}) has no zstd decoder`,
        );
      }
      this.stream = z.createZstdDecompress();
    } else {
      this.stream = zlib.createInflate();
    }
    this.stream.on('data', (c: Buffer) => this.parts.push(c));
    this.stream.on('error', (e: Error) => {
      this.failure = e;
    });
  }

  async decode(payload: Uint8Array, expected: number, at: number): Promise<Uint8Array> {
    const s = this.stream;
    if (this.failure === undefined) {
      await new Promise<void>((resolve) => {
        const done = () => {
          s.off('error', done);
          resolve();
        };
        s.once('error', done);
        s.write(Buffer.from(payload));
        s.flush(zlib.constants.Z_SYNC_FLUSH, done);
      });
      await new Promise<void>((resolve) => setImmediate(resolve));
    }
    if (this.failure) {
      throw new MigrationStreamError(
        'E_MULTIFD',
        `multifd packet at byte offset ${at}: bad compressed payload (${this.failure.message})`,
        {
          offset: at,
          record: 'multifd packet payload',
        },
      );
    }
    const out = Buffer.concat(this.parts.splice(0));
    if (out.length !== expected) {
      throw new MigrationStreamError(
        'E_MULTIFD',
        `multifd packet at byte offset ${at}: payload inflates to ${out.length} bytes, expected ${expected}`,
        { offset: at, record: 'multifd packet payload' },
      );
    }
    return out;
  }
}

/**
 * All multifd channels of a migration, applied by epoch (spec §7.5): epoch k of a channel is
 * its packets up to and including its (k+1)-th SYNC packet; epoch k of every channel is applied
 * when the main channel reaches its (k+1)-th EOS, packets in ascending packet_num order across
 * channels (the later copy of a page sent twice wins).
 */
export class MultifdSet {
  readonly channels: MultifdChannel[] = [];
  epochs = 0;

  constructor(channels: MultifdChannel[]) {
    this.channels = channels;
  }

  /** Reads every init packet and orders channels by their id (not by file order). */
  async open(): Promise<void> {
    for (const c of this.channels) await c.open();
    const ids = new Set<number>();
    for (const c of this.channels) {
      const id = c.init?.id ?? -1;
      if (ids.has(id)) {
        throw new MigrationStreamError('E_MULTIFD', `two multifd channels carry channel id ${id} (${c.name})`, {
          offset: 24,
          channel: c.source.channel,
          record: 'multifd init packet',
        });
      }
      ids.add(id);
    }
    this.channels.sort((a, b) => (a.init?.id ?? 0) - (b.init?.id ?? 0));
  }

  /** Applies the next epoch of every channel. Returns the pages and packets applied. */
  async applyEpoch(
    tps: number,
    ram: RamState,
    sink: MultifdPageSink,
    mainOffset: number,
  ): Promise<{ pages: number; packets: number }> {
    const k = this.epochs++;
    const active = new Set(this.channels);
    let pages = 0;
    let packets = 0;
    while (active.size > 0) {
      let best: MultifdChannel | undefined;
      let bestNum = Number.POSITIVE_INFINITY;
      for (const c of active) {
        const h = await c.peek(tps);
        if (h === undefined) {
          throw new MigrationStreamError(
            'E_MULTIFD',
            `multifd channel ${c.init?.id} (${c.name}) ends before its SYNC packet for epoch ${k} (main-channel EOS at byte offset ${mainOffset})`,
            { offset: c.source.offset, channel: c.source.channel, record: 'multifd packet' },
          );
        }
        if (h.packetNum < bestNum) {
          best = c;
          bestNum = h.packetNum;
        }
      }
      const c = best as MultifdChannel;
      const h = await c.take(tps, ram, sink, false);
      pages += h.normalPages;
      packets++;
      if (h.flags & MULTIFD_FLAG_SYNC) active.delete(c);
    }
    return { pages, packets };
  }

  /** After the main stream: reads what follows each channel's last SYNC (7.2 may send empty packets). */
  async finish(tps: number, ram: RamState, sink: MultifdPageSink): Promise<number> {
    let pages = 0;
    for (const c of this.channels) {
      while ((await c.peek(tps)) !== undefined) pages += (await c.take(tps, ram, sink, true)).normalPages;
    }
    return pages;
  }

  summaries(): MultifdChannelSummary[] {
    return this.channels.map((c) => c.stats);
  }
}
