import { existsSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { killChild, nodeChild, patternBytes, rejectionOf, sha256, sleep, tempDir } from '../test/helpers.js';
import type { Channel } from './channel.js';
import { connect } from './connect.js';
import { listen } from './listen.js';
import type { Listener } from './listener.js';

const cleanups: Array<() => unknown> = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

async function pair(uri = 'tcp:127.0.0.1:0', opts: Parameters<typeof connect>[1] = {}) {
  const listener = await listen(uri, opts);
  cleanups.push(() => listener.close());
  const client = await connect(listener.uri, opts);
  const server = await listener.accept({ timeoutMs: 5000 });
  cleanups.push(
    () => client.cancel(),
    () => server.cancel(),
  );
  return { listener, client, server };
}

describe('Channel over loopback TCP', () => {
  it('listens on tcp:HOST:0 and reports the chosen port', async () => {
    const { listener, client, server } = await pair();
    expect(listener.address.transport).toBe('tcp');
    const port = (listener.address as { port: number }).port;
    expect(port).toBeGreaterThan(0);
    expect(listener.uri).toBe(`tcp:127.0.0.1:${port}`);
    expect(client.info.remotePort).toBe(port);
    expect(server.info.localPort).toBe(port);
    expect(server.info.peer).toBe(`127.0.0.1:${client.info.localPort}`);
    expect(client.info).toMatchObject({ transport: 'tcp', readable: true, writable: true, tls: null });
  });

  it('exact reads reassemble writes of random sizes across chunk boundaries', async () => {
    const { client, server } = await pair();
    const src = patternBytes(3 << 20, 7);
    const sizes: number[] = [];
    let seed = 12345;
    for (let at = 0; at < src.length; ) {
      seed = (seed * 1103515245 + 12345) >>> 0;
      const n = Math.min(src.length - at, 1 + (seed % 70000));
      sizes.push(n);
      at += n;
    }
    const writer = (async () => {
      let at = 0;
      for (const n of sizes) {
        await client.write(src.subarray(at, at + n).slice());
        at += n;
      }
      await client.end();
    })();
    const got: Uint8Array[] = [];
    const readSizes = [1, 4, 4096, 4095, 65537, 8, 1 << 20, 3];
    let total = 0;
    for (let i = 0; total < src.length; i++) {
      const n = Math.min(readSizes[i % readSizes.length] as number, src.length - total);
      got.push((await server.readExactly(n)).slice());
      total += n;
    }
    await writer;
    expect(await server.read()).toBeNull();
    expect(sha256(got)).toBe(sha256([src]));
    expect(server.bytesRead).toBe(src.length);
    expect(client.bytesWritten).toBe(src.length);
  });

  it('batches small writes and flush() pushes them out', async () => {
    const { client, server } = await pair();
    for (let i = 0; i < 1000; i++) await client.write(Uint8Array.of(i & 0xff, (i >> 8) & 0xff));
    expect(client.writeBuffered).toBe(2000);
    await client.flush();
    expect(client.writeBuffered).toBe(0);
    const got = await server.readExactly(2000);
    for (let i = 0; i < 1000; i++) expect((got[2 * i] as number) | ((got[2 * i + 1] as number) << 8)).toBe(i);
  });

  it('writev keeps order across small and large buffers', async () => {
    const { client, server } = await pair();
    const big = patternBytes(100_000, 3);
    await client.writev([Uint8Array.of(1, 2), big, Uint8Array.of(3), new Uint8Array(0), Uint8Array.of(4, 5)]);
    await client.flush();
    const got = await server.readExactly(2 + big.length + 3);
    expect([...got.subarray(0, 2)]).toEqual([1, 2]);
    expect(sha256([got.subarray(2, 2 + big.length)])).toBe(sha256([big]));
    expect([...got.subarray(2 + big.length)]).toEqual([3, 4, 5]);
  });

  it('is full duplex and supports half-close (end) with the other direction still open', async () => {
    const { client, server } = await pair();
    await client.write(Uint8Array.of(9, 9, 9));
    await client.end();
    expect([...(await server.readExactly(3))]).toEqual([9, 9, 9]);
    expect(await server.read()).toBeNull();
    await server.write(Uint8Array.of(7));
    await server.end();
    expect([...(await client.readExactly(1))]).toEqual([7]);
    expect(await client.read()).toBeNull();
    expect(await client.closed).toEqual({ reason: 'ended' });
    expect(await server.closed).toEqual({ reason: 'ended' });
    expect((await rejectionOf(client.write(Uint8Array.of(1)))).code).toBe('E_CLOSED');
  });

  it('a short stream fails readExactly with E_EOF naming expected/got', async () => {
    const { client, server } = await pair();
    await client.write(new Uint8Array(10));
    await client.end();
    const e = await rejectionOf(server.readExactly(16));
    expect(e.code).toBe('E_EOF');
    expect([e.expected, e.got, e.offset]).toEqual([16, 10, 0]);
  });

  it('iterates chunks without copying and counts bytes', async () => {
    const { client, server } = await pair();
    const src = patternBytes(1 << 20, 99);
    void client.write(src).then(() => client.end());
    const parts: Uint8Array[] = [];
    for await (const c of server) parts.push(c);
    expect(sha256(parts)).toBe(sha256([src]));
    expect(server.bytesRead).toBe(src.length);
  });

  it('256 MiB to a slow reader: memory stays bounded by the high-water marks', async () => {
    const hwm = 2 << 20;
    const { client, server } = await pair('tcp:127.0.0.1:0', { writeHighWaterMark: hwm, readHighWaterMark: hwm });
    const chunk = 1 << 20;
    const total = 256;
    const writer = (async () => {
      for (let i = 0; i < total; i++) await client.write(patternBytes(chunk, i + 1));
      await client.end();
    })();
    let sinceNap = 0;
    const got: Uint8Array[] = [];
    for await (const c of server) {
      got.push(c);
      sinceNap += c.byteLength;
      if (sinceNap >= 16 << 20) {
        sinceNap = 0;
        await sleep(20);
      }
    }
    await writer;
    const expected: Uint8Array[] = [];
    for (let i = 0; i < total; i++) expected.push(patternBytes(chunk, i + 1));
    expect(sha256(got)).toBe(sha256(expected));
    expect(client.peaks.writeBuffered).toBeLessThanOrEqual(hwm + chunk);
    expect(server.peaks.readBuffered).toBeLessThanOrEqual(hwm + (256 << 10));
  });

  it('backpressure: with an idle reader the writer stalls after a bounded amount', async () => {
    const hwm = 1 << 20;
    const { client, server } = await pair('tcp:127.0.0.1:0', { writeHighWaterMark: hwm, readHighWaterMark: hwm });
    const chunk = patternBytes(256 << 10, 5);
    let stalled: Promise<void> | null = null;
    for (let i = 0; i < 1024 && !stalled; i++) {
      const w = client.write(chunk);
      w.catch(() => undefined);
      if (await Promise.race([w.then(() => false), sleep(300).then(() => true)])) stalled = w;
    }
    expect(stalled).not.toBeNull();
    // user-space buffers are bounded; the rest sits in kernel socket buffers
    expect(client.writeBuffered).toBeLessThanOrEqual(hwm + chunk.length);
    expect(server.readBuffered).toBeLessThanOrEqual(hwm + (256 << 10));
    expect(client.bytesWritten).toBeLessThan(128 << 20);
    const sent = client.bytesWritten;
    const drain = (async () => {
      let n = 0;
      for await (const c of server) n += c.byteLength;
      return n;
    })();
    await stalled;
    await client.end();
    expect(await drain).toBe(sent);
  });

  it('cancel on one side rejects the peer pending read promptly with a typed error', async () => {
    const { client, server } = await pair();
    const peerRead = server.readExactly(100);
    const ownRead = client.readExactly(100);
    client.cancel('operator cancelled the migration');
    const own = await rejectionOf(ownRead);
    expect(own.code).toBe('E_CANCELLED');
    expect(own.message).toMatch(/operator cancelled the migration/);
    const peer = await rejectionOf(peerRead);
    expect(peer.code).toBe('E_CLOSED');
    expect(peer.errno).toBe('ECONNRESET');
    expect([peer.expected, peer.got]).toEqual([100, 0]);
    expect((await client.closed).reason).toBe('cancelled');
    expect((await server.closed).reason).toBe('error');
    expect((await rejectionOf(client.write(Uint8Array.of(1)))).code).toBe('E_CANCELLED');
  });

  it('cancel from the accepting side rejects the connecting side too, and its pending writes', async () => {
    const { client, server } = await pair();
    const big = patternBytes(8 << 20, 1);
    const pendingWrites = (async () => {
      for (;;) await client.write(big);
    })();
    const failed = rejectionOf(pendingWrites);
    await sleep(20);
    server.cancel();
    const e = await failed;
    expect(e.code).toBe('E_CLOSED');
    expect(['ECONNRESET', 'EPIPE']).toContain(e.errno);
  });

  it('a peer killed mid-stream fails the reader and the writer with typed errors', async () => {
    const listener = await listen('tcp:127.0.0.1:0');
    cleanups.push(() => listener.close());
    const port = (listener.address as { port: number }).port;
    const { child } = await nodeChild(
      `const s=require('net').connect(${port},'127.0.0.1',()=>{s.write(Buffer.alloc(1<<20,7),()=>console.log('sent'));});`,
    );
    cleanups.push(() => killChild(child));
    const ch = await listener.accept({ timeoutMs: 5000 });
    cleanups.push(() => ch.cancel());
    expect((await ch.readExactly(100_000)).length).toBe(100_000);
    const rest = rejectionOf(ch.readExactly(2 << 20));
    await killChild(child);
    const e = await rest;
    expect(['E_EOF', 'E_CLOSED']).toContain(e.code);
    expect(e.expected).toBe(2 << 20);
    expect(e.got).toBe((1 << 20) - 100_000);
    expect(e.offset).toBe(100_000);
  });

  it('writing to a killed peer fails with E_CLOSED instead of hanging', async () => {
    const listener = await listen('tcp:127.0.0.1:0');
    cleanups.push(() => listener.close());
    const port = (listener.address as { port: number }).port;
    const { child } = await nodeChild(
      `require('net').connect(${port},'127.0.0.1',function(){this.pause();console.log('up');});`,
    );
    cleanups.push(() => killChild(child));
    const ch = await listener.accept({ timeoutMs: 5000 });
    cleanups.push(() => ch.cancel());
    const writes = (async () => {
      const b = patternBytes(1 << 20, 2);
      for (;;) await ch.write(b);
    })();
    const failed = rejectionOf(writes);
    await sleep(50);
    await killChild(child);
    const e = await failed;
    expect(e.code).toBe('E_CLOSED');
  });
});

describe('connect and accept', () => {
  it('hands out connections in arrival order (main channel first)', async () => {
    const listener = await listen('tcp:127.0.0.1:0');
    cleanups.push(() => listener.close());
    const clients: Channel[] = [];
    for (let i = 0; i < 4; i++) {
      const c = await connect(listener.uri);
      cleanups.push(() => c.cancel());
      await c.write(Uint8Array.of(i));
      await c.flush();
      clients.push(c);
    }
    await sleep(20);
    expect(listener.pending).toBe(4);
    for (let i = 0; i < 4; i++) {
      const s = await listener.accept();
      cleanups.push(() => s.cancel());
      expect(s.info.remotePort).toBe(clients[i]?.info.localPort);
      expect([...(await s.readExactly(1))]).toEqual([i]);
    }
  });

  it('an accept that waits gets the next arrival', async () => {
    const listener = await listen('tcp:127.0.0.1:0');
    cleanups.push(() => listener.close());
    const accepted = listener.accept({ timeoutMs: 5000 });
    const c = await connect(listener.uri);
    cleanups.push(() => c.cancel());
    const s = await accepted;
    cleanups.push(() => s.cancel());
    expect(s.info.remotePort).toBe(c.info.localPort);
  });

  it('accept times out with E_TIMEOUT and can be cancelled with a signal', async () => {
    const listener = await listen('tcp:127.0.0.1:0');
    cleanups.push(() => listener.close());
    const e = await rejectionOf(listener.accept({ timeoutMs: 50 }));
    expect(e.code).toBe('E_TIMEOUT');
    expect(e.uri).toBe(listener.uri);
    const ac = new AbortController();
    const p = listener.accept({ signal: ac.signal });
    ac.abort(new Error('migrate_cancel'));
    const c = await rejectionOf(p);
    expect(c.code).toBe('E_CANCELLED');
    expect(c.message).toMatch(/migrate_cancel/);
    // a connection arriving after the timed-out accepts is not lost
    const client = await connect(listener.uri);
    cleanups.push(() => client.cancel());
    const s = await listener.accept({ timeoutMs: 5000 });
    cleanups.push(() => s.cancel());
    expect(s.info.remotePort).toBe(client.info.localPort);
  });

  it('closing the listener rejects waiting accepts with E_CLOSED and keeps accepted channels', async () => {
    const { listener, client, server } = await pair();
    const waiting = rejectionOf(listener.accept());
    await listener.close();
    expect((await waiting).code).toBe('E_CLOSED');
    expect((await rejectionOf(listener.accept())).code).toBe('E_CLOSED');
    await client.write(Uint8Array.of(42));
    await client.flush();
    expect([...(await server.readExactly(1))]).toEqual([42]);
  });

  it('connect to a closed port is E_CONNECT with ECONNREFUSED', async () => {
    const listener = await listen('tcp:127.0.0.1:0');
    const uri = listener.uri;
    await listener.close();
    const e = await rejectionOf(connect(uri, { timeoutMs: 5000 }));
    expect(e.code).toBe('E_CONNECT');
    expect(e.errno).toBe('ECONNREFUSED');
    expect(e.uri).toBe(uri);
  });

  it('connect times out with E_TIMEOUT against a listener whose backlog is full', async () => {
    // A process that listens with backlog 1 and then never runs accept(): once its accept queue
    // is full the kernel drops further SYNs, so connect() stays pending.
    const { child, firstLine } = await nodeChild(
      `const s=require('net').createServer().listen({port:0,host:'127.0.0.1',backlog:1},()=>{console.log(s.address().port);Atomics.wait(new Int32Array(new SharedArrayBuffer(4)),0,0);});`,
    );
    cleanups.push(() => killChild(child));
    const uri = `tcp:127.0.0.1:${firstLine.trim()}`;
    let timedOut: Error | null = null;
    for (let i = 0; i < 16 && !timedOut; i++) {
      try {
        const c = await connect(uri, { timeoutMs: 300 });
        cleanups.push(() => c.cancel());
      } catch (e) {
        timedOut = e as Error;
      }
    }
    expect(timedOut).not.toBeNull();
    expect((timedOut as { code?: string }).code).toBe('E_TIMEOUT');
    expect(timedOut?.message).toMatch(/no result after 300 ms/);
  });

  it('connect can be cancelled with an AbortSignal', async () => {
    const ac = new AbortController();
    ac.abort(new Error('stop'));
    expect((await rejectionOf(connect('tcp:127.0.0.1:9', { signal: ac.signal }))).code).toBe('E_CANCELLED');
  });

  it('rejects bad URIs before doing anything', async () => {
    expect((await rejectionOf(connect('tcp:127.0.0.1'))).code).toBe('E_BAD_URI');
    expect((await rejectionOf(connect('tcp:127.0.0.1:0'))).message).toMatch(/only valid for listening/);
    expect((await rejectionOf(connect('tcp::4444'))).message).toMatch(/needs a host/);
    expect((await rejectionOf(listen('smtp:x'))).code).toBe('E_BAD_URI');
  });

  it('listen on a port in use is E_LISTEN with EADDRINUSE', async () => {
    const l1 = await listen('tcp:127.0.0.1:0');
    cleanups.push(() => l1.close());
    const e = await rejectionOf(listen(l1.uri));
    expect(e.code).toBe('E_LISTEN');
    expect(e.errno).toBe('EADDRINUSE');
  });

  it('works over IPv6 loopback when available', async () => {
    let listener: Listener;
    try {
      listener = await listen('tcp:[::1]:0');
    } catch (e) {
      expect((e as { code?: string }).code).toBe('E_LISTEN');
      process.stderr.write('*** IPv6 loopback not available: skipping the [::1] data check ***\n');
      return;
    }
    cleanups.push(() => listener.close());
    expect(listener.uri).toMatch(/^tcp:\[::1\]:\d+$/);
    const c = await connect(listener.uri);
    cleanups.push(() => c.cancel());
    const s = await listener.accept({ timeoutMs: 5000 });
    cleanups.push(() => s.cancel());
    await c.write(Uint8Array.of(6));
    await c.flush();
    expect([...(await s.readExactly(1))]).toEqual([6]);
    expect(s.info.peer).toMatch(/^\[::1\]:\d+$/);
  });
});

describe('unix sockets', () => {
  it('carries data and removes a stale socket file before listening', async () => {
    const { dir, remove } = tempDir();
    cleanups.push(remove);
    const path = join(dir, 'mig.sock');
    const first = await listen(`unix:${path}`);
    // simulate a crashed process: the socket file stays behind
    const stale = await listen(`unix:${join(dir, 'other.sock')}`);
    await stale.close();
    await first.close();
    const l = await listen(`unix:${path}`);
    cleanups.push(() => l.close());
    const c = await connect(`unix:${path}`);
    const s = await l.accept({ timeoutMs: 5000 });
    cleanups.push(
      () => c.cancel(),
      () => s.cancel(),
    );
    expect(c.info).toMatchObject({ transport: 'unix', peer: path });
    const src = patternBytes(2 << 20, 11);
    await c.write(src);
    await c.end();
    expect(sha256([await s.readExactly(src.length)])).toBe(sha256([src]));
    await l.close();
    expect(existsSync(path)).toBe(false);
  });

  it('a stale socket file left by a killed process is replaced', async () => {
    const { dir, remove } = tempDir();
    cleanups.push(remove);
    const path = join(dir, 'left.sock');
    const { child } = await nodeChild(
      `require('net').createServer().listen(${JSON.stringify(path)},()=>console.log('up'));`,
    );
    await killChild(child);
    expect(existsSync(path)).toBe(true);
    const l = await listen(`unix:${path}`);
    cleanups.push(() => l.close());
    const c = await connect(`unix:${path}`);
    cleanups.push(() => c.cancel());
    const s = await l.accept({ timeoutMs: 5000 });
    cleanups.push(() => s.cancel());
  });

  it('refuses to listen over a path that is not a socket', async () => {
    const { dir, remove } = tempDir();
    cleanups.push(remove);
    const path = join(dir, 'regular');
    writeFileSync(path, 'keep me');
    const e = await rejectionOf(listen(`unix:${path}`));
    expect(e.code).toBe('E_LISTEN');
    expect(e.message).toMatch(/exists and is not a socket/);
  });

  it('connect to a missing socket is E_CONNECT with ENOENT', async () => {
    const e = await rejectionOf(connect('unix:/nonexistent-dir-e2k/mig.sock'));
    expect(e.code).toBe('E_CONNECT');
    expect(e.errno).toBe('ENOENT');
  });
});
