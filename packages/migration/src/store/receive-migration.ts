import { totalmem } from 'node:os';
import { MigrationStreamError, UnsupportedFeatureError } from '../errors.js';
import { ByteSource } from '../stream/byte-source.js';
import { RamSectionLoader } from '../stream/ram-loader.js';
import { RamState } from '../stream/ram-state.js';
import type { LoaderResolver, SectionInfo, SectionLoader } from '../stream/section-loader.js';
import { StreamReader } from '../stream/stream-reader.js';
import type { MigCommand } from '../wire/command.js';
import { type Configuration, encodeConfiguration } from '../wire/configuration.js';
import { encodeRpMessage, type RpMessage } from '../wire/return-path.js';
import { type BlockMemoryFactory, heapBlockMemory } from './block-memory.js';
import { type DeviceSectionEntry, DeviceStateCollector } from './device-state-collector.js';
import { type RamRecordCounts, type ReceivedBlock, ReceivedRam } from './received-ram.js';

/** Writes bytes to the source on the return path (the same socket, the other direction). */
export type ReturnPathWriter = (bytes: Uint8Array) => Promise<void>;

export interface ReceiveOptions {
  /** The main channel's bytes (a socket, a pipe, a file…). */
  input: AsyncIterable<Uint8Array> | Iterable<Uint8Array> | Uint8Array;
  /** The return path, when the channel is bidirectional; without it OPEN_RETURN_PATH is an error. */
  returnPath?: ReturnPathWriter;
  /** Allocates the memory of each RAM block (default: {@link heapBlockMemory}). */
  memory?: BlockMemoryFactory;
  /** Bound on the RAM block list's total (default: the machine's physical memory). */
  maxRam?: number;
  /** Called as input arrives with the total bytes read so far. */
  onProgress?: (bytesRead: number) => void;
  /** Name of the input in errors (default `main`). */
  channel?: string;
}

/** The `ram` section's header fields, for re-sending it identically. */
export interface RamSectionHeader {
  sectionId: number;
  instanceId: number;
  versionId: number;
}

/** A completely received precopy migration, held in memory until it is stored. */
export interface ReceivedMigration {
  configuration: Configuration;
  /** The configuration record as it was on the wire (0x07 …). */
  configurationBytes: Uint8Array;
  pageSize: number;
  ramSection: RamSectionHeader;
  blocks: ReceivedBlock[];
  counts: RamRecordCounts;
  /** START/PART/END ram sections seen. */
  ramSections: { start: number; part: number; end: number };
  /** Bytes from the end of the last ram section through EOF, verbatim. */
  devices: Uint8Array;
  deviceSections: DeviceSectionEntry[];
  /** vmdesc JSON bytes, when the stream carried one. */
  vmdesc: Uint8Array | undefined;
  /** Main-stream bytes read. */
  bytes: number;
  /** The source opened the return path (OPEN_RETURN_PATH); PONGs and SHUT were sent on it. */
  returnPath: boolean;
  /** Releases the RAM blocks' memory. */
  close(): void;
}

/**
 * Receives a QEMU 7.2 precopy migration (plain, XBZRLE or legacy compress) into memory: RAM
 * records are applied to per-block memory, device sections are kept as opaque bytes, the vmdesc
 * is kept, and the return path is answered (PONG per PING, SHUT 0 once everything is loaded)
 * when the source opens it. Any malformed input gives a typed {@link MigrationStreamError}
 * naming the byte offset and section; the source then gets SHUT 1.
 */
export async function receiveMigration(opts: ReceiveOptions): Promise<ReceivedMigration> {
  const source = new ByteSource(opts.input, {
    channel: opts.channel ?? 'main',
    onProgress: opts.onProgress,
    yieldEveryMs: 1,
  });
  const ram = new ReceivedRam({
    memory: opts.memory ?? heapBlockMemory,
    pageSize: 4096,
    maxRam: opts.maxRam ?? totalmem(),
  });
  const ramState = new RamState();
  const ramLoader = new RamSectionLoader(ramState, ram);
  const devices = new DeviceStateCollector();
  const ramSections = { start: 0, part: 0, end: 0 };
  let ramHeader: RamSectionHeader | undefined;
  let configuration: Configuration | undefined;
  let vmdesc: Uint8Array | undefined;
  let rpOpen = false;
  let shutSent = false;
  const rpSend = async (m: RpMessage) => {
    if (opts.returnPath) await opts.returnPath(encodeRpMessage(m).written());
  };

  const resolver: LoaderResolver = {
    resolve: (s: SectionInfo): SectionLoader => (s.idstr === 'ram' ? ramLoader : devices),
  };
  const reader = new StreamReader(source, {
    resolver,
    visitor: {
      configuration: (c, place) => {
        if (reader.state.pageSize !== 4096) {
          throw new UnsupportedFeatureError(
            'target-page-bits',
            place.offset,
            `the configuration announces ${reader.state.pageSize}-byte target pages; x86 guests (QEMU 7.2) use 4096`,
            { record: 'configuration' },
          );
        }
        configuration = c;
      },
      sectionBegin: (s) => {
        if (configuration === undefined) throw missingConfiguration(s.offset);
        if (s.idstr !== 'ram') return;
        if (devices.started) {
          throw new MigrationStreamError(
            'E_STORE_LAYOUT',
            `ram section ${s.kind} at byte offset ${s.offset} follows device sections: the store keeps device state only after the last ram section`,
            { offset: s.offset, section: s.label },
          );
        }
        if (s.kind === 'START') {
          if (ramHeader !== undefined) {
            throw new MigrationStreamError('E_STORE_LAYOUT', `a second ram START at byte offset ${s.offset}`, {
              offset: s.offset,
              section: s.label,
            });
          }
          ramHeader = { sectionId: s.sectionId, instanceId: s.instanceId, versionId: s.versionId };
          ramSections.start++;
        } else if (s.kind === 'PART') ramSections.part++;
        else ramSections.end++;
      },
      command: async (c, place) => {
        if (configuration === undefined) throw missingConfiguration(place.offset);
        await onCommand(c, place.offset);
      },
      eof: () => devices.eof(),
      vmdesc: async (json) => {
        vmdesc = json.slice();
        await shut(0);
      },
    },
  });

  async function onCommand(c: MigCommand, at: number): Promise<void> {
    if (c.cmd === 'OPEN_RETURN_PATH') {
      if (!opts.returnPath) {
        throw new MigrationStreamError(
          'E_UNSUPPORTED_FEATURE',
          `OPEN_RETURN_PATH at byte offset ${at}: this input is one-way (a pipe or file) and cannot carry a return path`,
          { offset: at, record: 'command OPEN_RETURN_PATH' },
        );
      }
      rpOpen = true;
      return;
    }
    if (c.cmd === 'PING') {
      if (!rpOpen) {
        throw new MigrationStreamError(
          'E_BAD_COMMAND',
          `PING ${c.value} at byte offset ${at} before OPEN_RETURN_PATH: no return path to answer on`,
          { offset: at, record: 'command PING' },
        );
      }
      await rpSend({ type: 'PONG', value: c.value });
      return;
    }
    const feature = c.cmd.startsWith('POSTCOPY') || c.cmd === 'PACKAGED' ? 'postcopy' : c.cmd;
    throw new UnsupportedFeatureError(
      feature,
      at,
      `command ${c.cmd}: this destination receives precopy migrations only (postcopy-ram is not enabled)`,
      { record: `command ${c.cmd}` },
    );
  }

  async function shut(value: number): Promise<void> {
    if (!rpOpen || shutSent) return;
    shutSent = true;
    await rpSend({ type: 'SHUT', value });
  }

  try {
    await reader.read();
    if (configuration === undefined) throw missingConfiguration(source.offset);
    if (ramHeader === undefined || ramSections.end === 0) {
      throw new MigrationStreamError(
        'E_STORE_LAYOUT',
        `the stream ended (byte offset ${source.offset}) without ${ramHeader === undefined ? 'a ram START' : 'a ram END'} section: not a completed precopy migration`,
        { offset: source.offset, section: 'ram' },
      );
    }
    await shut(0);
  } catch (err) {
    await shut(1).catch(() => undefined);
    ram.close();
    throw err;
  } finally {
    await source.close();
  }

  return {
    configuration,
    configurationBytes: encodeConfiguration(configuration).written().slice(),
    pageSize: reader.state.pageSize,
    ramSection: ramHeader,
    blocks: ram.blocks,
    counts: ram.counts,
    ramSections,
    devices: devices.result(),
    deviceSections: devices.sections,
    vmdesc,
    bytes: source.bytesRead,
    returnPath: rpOpen,
    close: () => ram.close(),
  };
}

function missingConfiguration(at: number): MigrationStreamError {
  return new MigrationStreamError(
    'E_BAD_CONFIGURATION',
    `record at byte offset ${at} comes before any configuration record: QEMU 7.2 requires the configuration right after the header`,
    { offset: at, record: 'configuration' },
  );
}
