/**
 * A TCP proxy for end-to-end migration tests that need to act on the stream at an exact byte
 * instead of relying on timing: it forwards the client's connection to `target` and can
 * - `pause()` / `resume()` forwarding (it keeps reading, so resets are still seen; past 64 MiB
 *   buffered it stops reading),
 * - `cutAfter(n)`: forward exactly n bytes, then cut the connection (see {@link CutMode}),
 * - `corruptAt(offset, xor)`: flip bits of the byte at a stream offset,
 * - `waitForBytes(n)`: resolve once n bytes went client → target,
 * - `throttle(bps)`, `onMatch(pattern, …)`: see {@link ShapedPipe}.
 * Only the client → target direction is shaped; target → client is forwarded as is.
 *
 * By default only the first connection is forwarded (later ones are refused). With
 * `connections: 'all'` (a postcopy-preempt source opens a second one) every connection is
 * forwarded, the upstream connections made in accept order (QEMU tells channels apart by that
 * order); the methods above act on the first one (`pipe(0)`), and its cut cuts all of them, as a
 * network failure would. `pipe(i)` shapes connection i on its own.
 */
import { connect, createServer, type Server, type Socket } from 'node:net';
import { type CutMode, ShapedPipe } from './shaped-pipe.js';

export type { CutMode } from './shaped-pipe.js';
export { ShapedPipe } from './shaped-pipe.js';

export interface TcpProxyOptions {
  /** `first` (default): one connection; `all`: every connection, in accept order. */
  connections?: 'first' | 'all';
  /** How a cut ends the connections (default `reset`). */
  cut?: CutMode;
  /**
   * Listen on this Unix socket path instead of a TCP port (`uri` becomes `unix:PATH`): its small,
   * fixed kernel buffers keep a stalled or throttled client close to what was forwarded, where a
   * loopback TCP receive buffer may grow to tens of MiB.
   */
  unixPath?: string;
}

export interface TcpProxy {
  /** `tcp:127.0.0.1:PORT` (or `unix:PATH`) to give the source. */
  readonly uri: string;
  /** The TCP port (0 with `unixPath`). */
  readonly port: number;
  /** Bytes forwarded client → target so far on the first connection. */
  readonly forwarded: number;
  /** Connections accepted so far. */
  readonly connections: number;
  pause(): void;
  resume(): void;
  cutAfter(bytes: number): void;
  corruptAt(offset: number, xor: number): void;
  waitForBytes(bytes: number, timeoutMs?: number): Promise<void>;
  /** {@link ShapedPipe.onMatch} on the first connection (registered before it arrives, too). */
  onMatch(pattern: Uint8Array, extra: number, fire: (end: number, extra: Buffer) => void): void;
  /** Connection `i` (0 = the first, the main migration channel) once accepted. */
  pipe(i: number): ShapedPipe | undefined;
  /** Resolves when connection `i` has been accepted. */
  waitForConnection(i: number, timeoutMs?: number): Promise<ShapedPipe>;
  /** Cuts every connection now. */
  cutAll(): void;
  /** Resolves when the first client connection closed (either way). */
  readonly clientClosed: Promise<void>;
  close(): Promise<void>;
}

export async function startTcpProxy(
  target: { host: string; port: number },
  opts: TcpProxyOptions = {},
): Promise<TcpProxy> {
  const all = opts.connections === 'all';
  const mode = opts.cut ?? 'reset';
  const pipes: ShapedPipe[] = [];
  const accepted: (() => void)[] = [];
  let chain: Promise<void> = Promise.resolve();
  let closedResolve: () => void = () => {};
  const clientClosed = new Promise<void>((r) => {
    closedResolve = r;
  });
  // Shaping before the first connection arrives is remembered and applied to it.
  const early: ((p: ShapedPipe) => void)[] = [];

  const server: Server = createServer({ noDelay: true }, (sock) => {
    if (pipes.length > 0 && !all) {
      sock.destroy();
      return;
    }
    const index = pipes.length;
    const pipe = new ShapedPipe(sock, mode);
    pipes.push(pipe);
    if (index === 0) {
      for (const f of early.splice(0)) f(pipe);
      pipe.onCut = () => {
        for (const p of pipes) if (p !== pipe) p.cutNow();
      };
      sock.on('close', () => closedResolve());
    }
    for (const w of accepted.splice(0)) w();
    let upstream: Socket | undefined;
    sock.on('error', () => upstream?.resetAndDestroy());
    sock.on('end', () => upstream?.end());
    // Upstream connections one after the other, in accept order.
    chain = chain.then(
      () =>
        new Promise<void>((resolve) => {
          const up = connect({ host: target.host, port: target.port, noDelay: true }, () => {
            pipe.attach(up);
            resolve();
          });
          upstream = up;
          up.on('data', (d) => {
            if (!sock.destroyed) sock.write(d);
          });
          up.on('error', () => {
            sock.resetAndDestroy();
            resolve();
          });
          up.on('end', () => {
            if (!pipe.cut) sock.end();
          });
        }),
    );
  });
  if (opts.unixPath) await new Promise<void>((r) => server.listen(opts.unixPath, r));
  else await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const port = opts.unixPath ? 0 : (server.address() as { port: number }).port;
  const main = (f: (p: ShapedPipe) => void) => {
    const p = pipes[0];
    if (p) f(p);
    else early.push(f);
  };

  return {
    uri: opts.unixPath ? `unix:${opts.unixPath}` : `tcp:127.0.0.1:${port}`,
    port,
    get forwarded() {
      return pipes[0]?.forwarded ?? 0;
    },
    get connections() {
      return pipes.length;
    },
    pause: () => main((p) => p.pause()),
    resume: () => main((p) => p.resume()),
    cutAfter: (bytes) => main((p) => p.cutAfter(bytes)),
    corruptAt: (offset, xor) => main((p) => p.corruptAt(offset, xor)),
    onMatch: (pattern, extra, fire) => main((p) => p.onMatch(pattern, extra, fire)),
    waitForBytes: async (bytes, timeoutMs = 30_000) => {
      const p = pipes[0] ?? (await waitFor(0, timeoutMs));
      await p.waitForBytes(bytes, timeoutMs);
    },
    pipe: (i) => pipes[i],
    waitForConnection: (i, timeoutMs = 30_000) => waitFor(i, timeoutMs),
    cutAll: () => {
      for (const p of pipes) p.cutNow();
    },
    clientClosed,
    async close() {
      for (const p of pipes) p.close();
      await new Promise<void>((r) => server.close(() => r()));
    },
  };

  function waitFor(i: number, timeoutMs: number): Promise<ShapedPipe> {
    return new Promise((resolve, reject) => {
      const timer = setTimeout(
        () => reject(new Error(`proxy: connection ${i} not accepted in ${timeoutMs} ms`)),
        timeoutMs,
      );
      const check = () => {
        const p = pipes[i];
        if (p) {
          clearTimeout(timer);
          resolve(p);
        } else accepted.push(check);
      };
      check();
    });
  }
}
