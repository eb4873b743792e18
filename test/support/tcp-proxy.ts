/**
 * A TCP proxy for end-to-end migration tests that need to act on the stream at an exact byte
 * instead of relying on timing: it forwards one client connection to `target` and can
 * - `pause()` / `resume()` forwarding (it keeps reading, so resets are still seen; past 64 MiB
 *   buffered it stops reading),
 * - `cutAfter(n)`: forward exactly n bytes, then reset both connections,
 * - `corruptAt(offset, xor)`: flip bits of the byte at a stream offset,
 * - `waitForBytes(n)`: resolve once n bytes went client → target.
 * Only the client → target direction is shaped; target → client is forwarded as is.
 */
import { connect, createServer, type Server, type Socket } from 'node:net';

const MAX_HELD = 64 << 20;

export interface TcpProxy {
  /** `tcp:127.0.0.1:PORT` to give the source. */
  readonly uri: string;
  readonly port: number;
  /** Bytes forwarded client → target so far. */
  readonly forwarded: number;
  pause(): void;
  resume(): void;
  cutAfter(bytes: number): void;
  corruptAt(offset: number, xor: number): void;
  waitForBytes(bytes: number, timeoutMs?: number): Promise<void>;
  /** Resolves when the client connection closed (either way). */
  readonly clientClosed: Promise<void>;
  close(): Promise<void>;
}

export async function startTcpProxy(target: { host: string; port: number }): Promise<TcpProxy> {
  let client: Socket | undefined;
  let upstream: Socket | undefined;
  let forwarded = 0;
  let paused = false;
  let cutAt = Number.POSITIVE_INFINITY;
  const corruptions = new Map<number, number>();
  const held: Buffer[] = [];
  let heldBytes = 0;
  const waiters: { bytes: number; resolve: () => void }[] = [];
  let closedResolve: () => void = () => {};
  const clientClosed = new Promise<void>((r) => {
    closedResolve = r;
  });

  const resetBoth = () => {
    client?.resetAndDestroy();
    upstream?.resetAndDestroy();
  };

  const send = (chunk: Buffer) => {
    let c = chunk;
    if (forwarded + c.length > cutAt) c = c.subarray(0, Math.max(0, cutAt - forwarded));
    if (c.length > 0) {
      for (const [off, xor] of corruptions) {
        if (off >= forwarded && off < forwarded + c.length) {
          c = Buffer.from(c);
          c[off - forwarded] = (c[off - forwarded] as number) ^ xor;
          corruptions.delete(off);
        }
      }
      upstream?.write(c);
      forwarded += c.length;
      for (const w of [...waiters]) {
        if (forwarded >= w.bytes) {
          waiters.splice(waiters.indexOf(w), 1);
          w.resolve();
        }
      }
    }
    if (forwarded >= cutAt) {
      // let the forwarded bytes reach the target before the reset
      upstream?.once('drain', resetBoth);
      if (upstream?.writableLength === 0) setImmediate(resetBoth);
    }
  };

  const flushHeld = () => {
    while (!paused && held.length > 0) {
      const c = held.shift() as Buffer;
      heldBytes -= c.length;
      send(c);
    }
    if (heldBytes < MAX_HELD) client?.resume();
  };

  const server: Server = createServer({ noDelay: true }, (sock) => {
    if (client) {
      sock.destroy();
      return;
    }
    client = sock;
    upstream = connect({ host: target.host, port: target.port, noDelay: true });
    upstream.on('data', (d) => client?.write(d));
    upstream.on('error', () => client?.resetAndDestroy());
    upstream.on('end', () => client?.end());
    sock.on('data', (d: Buffer) => {
      if (forwarded >= cutAt) return;
      if (paused || held.length > 0) {
        held.push(d);
        heldBytes += d.length;
        if (heldBytes >= MAX_HELD) sock.pause();
        return;
      }
      send(d);
    });
    sock.on('error', () => upstream?.resetAndDestroy());
    sock.on('end', () => upstream?.end());
    sock.on('close', () => closedResolve());
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const port = (server.address() as { port: number }).port;

  return {
    uri: `tcp:127.0.0.1:${port}`,
    port,
    get forwarded() {
      return forwarded;
    },
    pause() {
      paused = true;
    },
    resume() {
      paused = false;
      flushHeld();
    },
    cutAfter(bytes) {
      cutAt = bytes;
    },
    corruptAt(offset, xor) {
      corruptions.set(offset, xor);
    },
    waitForBytes(bytes, timeoutMs = 30_000) {
      if (forwarded >= bytes) return Promise.resolve();
      return new Promise((resolve, reject) => {
        const timer = setTimeout(
          () => reject(new Error(`proxy: only ${forwarded} of ${bytes} bytes within ${timeoutMs} ms`)),
          timeoutMs,
        );
        waiters.push({
          bytes,
          resolve: () => {
            clearTimeout(timer);
            resolve();
          },
        });
      });
    },
    clientClosed,
    async close() {
      client?.destroy();
      upstream?.destroy();
      await new Promise<void>((r) => server.close(() => r()));
    },
  };
}
