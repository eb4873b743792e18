import { createReadStream, createWriteStream, type ReadStream, type WriteStream } from 'node:fs';
import { Channel } from './channel.js';
import type { ChannelIo } from './channel-io.js';
import type { ChannelInfo, ChannelOptions } from './channel-types.js';
import { errnoOf, messageOf, TransportError } from './errors.js';
import type { TransportKind } from './uri.js';

/** Read size for files (node's default of 64 KiB makes many small reads). */
const FILE_READ_CHUNK = 1 << 20;

export interface FileChannelOptions extends ChannelOptions {
  /** Outgoing: fsync before close. */
  fsync?: boolean;
}

/**
 * `file:PATH[,offset=N]`. Outgoing creates or truncates PATH (mode 0600, as QEMU opens it with
 * O_CREAT|O_TRUNC) and writes from byte N; incoming reads PATH from byte N.
 * @throws TransportError E_FILE naming the path and errno.
 */
export async function fileChannel(
  path: string,
  offset: number,
  direction: 'in' | 'out',
  uri: string,
  opts: FileChannelOptions,
): Promise<Channel> {
  const stream =
    direction === 'out'
      ? createWriteStream(path, { flags: 'w', mode: 0o600, start: offset, flush: opts.fsync ?? false })
      : createReadStream(path, { start: offset, highWaterMark: FILE_READ_CHUNK });
  await opened(stream).catch((e: unknown) => {
    throw fileError(uri, direction === 'out' ? 'cannot create' : 'cannot open', e);
  });
  return new Channel(fileIo(stream, direction, uri), fileInfo('file', uri, path, direction), opts);
}

/** Resolves when the stream has its descriptor, rejects with the open error. */
function opened(stream: ReadStream | WriteStream): Promise<void> {
  const events: NodeJS.EventEmitter = stream;
  return new Promise<void>((resolve, reject) => {
    events.once('open', () => {
      events.off('error', reject);
      resolve();
    });
    events.once('error', reject);
  });
}

/** ChannelIo over a file stream (also used for `fd:` regular files). */
export function fileIo(stream: ReadStream | WriteStream, direction: 'in' | 'out', uri: string): ChannelIo {
  const released = new Promise<void>((resolve) => {
    if (stream.closed) resolve();
    else (stream as NodeJS.EventEmitter).once('close', resolve);
  });
  return {
    readable: direction === 'in' ? (stream as ReadStream) : null,
    writable: direction === 'out' ? (stream as WriteStream) : null,
    released,
    abort: () => stream.destroy(),
    release: () => stream.destroy(),
    explain: (err) => fileError(uri, direction === 'out' ? 'write failed' : 'read failed', err),
    checkEnd:
      direction === 'out'
        ? async () => {
            await released;
            return null;
          }
        : undefined,
  };
}

export function fileInfo(transport: TransportKind, uri: string, peer: string, direction: 'in' | 'out'): ChannelInfo {
  return { transport, uri, peer, readable: direction === 'in', writable: direction === 'out', tls: null };
}

function fileError(uri: string, what: string, e: unknown): TransportError {
  return new TransportError('E_FILE', `${uri}: ${what}: ${messageOf(e)}`, { uri, errno: errnoOf(e), cause: e });
}
