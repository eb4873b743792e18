/**
 * A TCP proxy for postcopy recovery tests with several connections (main + postcopy-preempt):
 * every accepted connection is forwarded to the target, the upstream connections made in accept
 * order (the destination tells channels apart by their order), and `cut()` resets them all at
 * once — both sides see a broken connection, as with a network failure. test/support/tcp-proxy.ts
 * forwards one connection only.
 */
import { connect, createServer, type Socket } from 'node:net';

export interface CutProxy {
  readonly uri: string;
  /** Client → target bytes forwarded on all connections. */
  readonly forwarded: number;
  cut(): void;
  close(): Promise<void>;
}

export async function startCutProxy(target: { host: string; port: number }): Promise<CutProxy> {
  const sockets: Socket[] = [];
  let forwarded = 0;
  let chain: Promise<void> = Promise.resolve();
  const server = createServer({ noDelay: true }, (client) => {
    sockets.push(client);
    const held: Buffer[] = [];
    client.on('data', (d: Buffer) => held.push(d));
    client.on('error', () => {});
    chain = chain.then(
      () =>
        new Promise<void>((resolve) => {
          const up = connect({ host: target.host, port: target.port, noDelay: true }, () => {
            for (const d of held.splice(0)) {
              forwarded += d.length;
              up.write(d);
            }
            client.removeAllListeners('data');
            client.on('data', (d: Buffer) => {
              forwarded += d.length;
              up.write(d);
            });
            resolve();
          });
          sockets.push(up);
          up.on('data', (d) => client.write(d));
          up.on('error', () => client.resetAndDestroy());
          up.on('end', () => client.end());
          client.on('error', () => up.resetAndDestroy());
          client.on('end', () => up.end());
          up.once('error', () => resolve());
        }),
    );
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const port = (server.address() as { port: number }).port;
  return {
    uri: `tcp:127.0.0.1:${port}`,
    get forwarded() {
      return forwarded;
    },
    cut() {
      for (const s of sockets) s.resetAndDestroy();
    },
    async close() {
      for (const s of sockets) s.destroy();
      await new Promise<void>((r) => server.close(() => r()));
    },
  };
}

/** A TCP port that was free a moment ago (for QEMU's migrate-recover, which needs a fixed port). */
export async function freePort(): Promise<number> {
  const s = createServer();
  await new Promise<void>((r) => s.listen(0, '127.0.0.1', r));
  const port = (s.address() as { port: number }).port;
  await new Promise<void>((r) => s.close(() => r()));
  return port;
}
