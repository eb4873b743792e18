import { copyFileSync } from 'node:fs';
import { createServer, connect as netConnect } from 'node:net';
import { join } from 'node:path';
import { afterEach, beforeAll, describe, expect, it } from 'vitest';
import { CLIENT_DN, patternBytes, rejectionOf, sha256, sleep, tempDir, tlsDir } from '../../test/helpers.js';
import type { Channel } from '../channel.js';
import { connect } from '../connect.js';
import { listen } from '../listen.js';
import type { Listener } from '../listener.js';
import { TlsCredsRegistry } from './tls-creds-registry.js';
import type { TlsSettings } from './tls-settings.js';

const SERVER_DN = 'CN=localhost,O=e2k-migrate';
const reg = new TlsCredsRegistry();
const cleanups: Array<() => unknown> = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

beforeAll(async () => {
  await reg.objectAdd({
    'qom-type': 'tls-creds-x509',
    id: 'srv',
    dir: tlsDir('good'),
    endpoint: 'server',
    'verify-peer': true,
  });
  await reg.objectAdd({ 'qom-type': 'tls-creds-x509', id: 'cli', dir: tlsDir('good'), endpoint: 'client' });
  // signed by a CA the other side does not trust: QEMU's sanity check would refuse to load them
  await reg.objectAdd({
    'qom-type': 'tls-creds-x509',
    id: 'rogue-cli',
    dir: tlsDir('rogue-client'),
    endpoint: 'client',
    'sanity-check': false,
  });
  await reg.objectAdd({
    'qom-type': 'tls-creds-x509',
    id: 'rogue-srv',
    dir: tlsDir('rogue-server'),
    endpoint: 'server',
    'sanity-check': false,
  });
  await reg.objectAdd({ 'qom-type': 'authz-simple', id: 'only-client', identity: CLIENT_DN });
  await reg.objectAdd({ 'qom-type': 'authz-simple', id: 'someone-else', identity: 'CN=someone-else,O=e2k-migrate' });
  await reg.objectAdd({
    'qom-type': 'authz-list',
    id: 'glob',
    policy: 'deny',
    rules: [
      { match: 'CN=blocked.example,*', policy: 'deny', format: 'glob' },
      { match: 'CN=*.example,O=e2k-migrate', policy: 'allow', format: 'glob' },
    ],
  });
});

async function tlsListener(
  settings: TlsSettings | null,
  uri = 'tcp:127.0.0.1:0',
  handshakeTimeoutMs?: number,
): Promise<Listener> {
  const l = await listen(uri, { tls: settings, handshakeTimeoutMs });
  cleanups.push(() => l.close());
  return l;
}

function track(ch: Channel): Channel {
  cleanups.push(() => ch.cancel());
  return ch;
}

/** What the client ends up seeing when the server refuses it after the handshake (TLS 1.3). */
async function clientFate(p: Promise<Channel>): Promise<string> {
  try {
    const ch = track(await p);
    await ch.readExactly(1);
    return 'data';
  } catch (e) {
    return (e as { code: string }).code;
  }
}

describe('TLS channels (x509, both sides verified)', () => {
  it('carries data after mutual verification and reports both subjects', async () => {
    const l = await tlsListener(reg.settings({ 'tls-creds': 'srv', 'tls-authz': 'only-client' }, 'server'));
    const client = track(await connect(l.uri, { tls: reg.settings({ 'tls-creds': 'cli' }, 'client') }));
    const server = track(await l.accept({ timeoutMs: 5000 }));
    expect(client.info.tls).toMatchObject({ protocol: 'TLSv1.3', peerDn: SERVER_DN });
    expect(server.info.tls).toMatchObject({ protocol: 'TLSv1.3', peerDn: CLIENT_DN });
    const src = patternBytes(8 << 20, 21);
    const writer = client.write(src).then(() => client.end());
    expect(sha256([await server.readExactly(src.length)])).toBe(sha256([src]));
    await writer;
    expect(await server.read()).toBeNull();
    await server.write(Uint8Array.of(1, 2, 3));
    await server.end();
    expect([...(await client.readExactly(3))]).toEqual([1, 2, 3]);
    expect(await client.closed).toEqual({ reason: 'ended' });
  });

  it('checks the server against tls-hostname when given', async () => {
    const l = await tlsListener(reg.settings({ 'tls-creds': 'srv' }, 'server'));
    const ok = track(
      await connect(l.uri, { tls: reg.settings({ 'tls-creds': 'cli', 'tls-hostname': 'localhost' }, 'client') }),
    );
    track(await l.accept({ timeoutMs: 5000 }));
    expect(ok.info.tls?.peerDn).toBe(SERVER_DN);
  });

  it('refuses a server whose certificate does not match the host name', async () => {
    const l = await tlsListener(reg.settings({ 'tls-creds': 'srv' }, 'server'));
    const accepted = rejectionOf(l.accept({ timeoutMs: 5000 }));
    const e = await rejectionOf(
      connect(l.uri, { tls: reg.settings({ 'tls-creds': 'cli', 'tls-hostname': 'wrong.example' }, 'client') }),
    );
    expect(e.code).toBe('E_TLS');
    expect(e.errno).toBe('ERR_TLS_CERT_ALTNAME_INVALID');
    expect(e.message).toMatch(/does not match host name "wrong.example"/);
    expect((await accepted).code).toBe('E_TLS');
  });

  it('refuses an untrusted server (certificate from another CA)', async () => {
    const l = await tlsListener(reg.settings({ 'tls-creds': 'rogue-srv' }, 'server'));
    const accepted = rejectionOf(l.accept({ timeoutMs: 5000 }));
    const e = await rejectionOf(connect(l.uri, { tls: reg.settings({ 'tls-creds': 'cli' }, 'client') }));
    expect(e.code).toBe('E_TLS');
    expect(e.errno).toBe('UNABLE_TO_VERIFY_LEAF_SIGNATURE');
    expect((await accepted).code).toBe('E_TLS');
  });

  it('refuses an untrusted client (certificate from another CA)', async () => {
    const l = await tlsListener(reg.settings({ 'tls-creds': 'srv' }, 'server'));
    const accepted = rejectionOf(l.accept({ timeoutMs: 5000 }));
    const fate = clientFate(connect(l.uri, { tls: reg.settings({ 'tls-creds': 'rogue-cli' }, 'client') }));
    const e = await accepted;
    expect(e.code).toBe('E_TLS');
    expect(e.errno).toBe('UNABLE_TO_VERIFY_LEAF_SIGNATURE');
    expect(e.peerDn).toBe(CLIENT_DN);
    expect(['E_TLS', 'E_EOF', 'E_CLOSED']).toContain(await fate);
  });

  it('refuses a client without a certificate when the server verifies peers', async () => {
    const { dir, remove } = tempDir();
    cleanups.push(remove);
    copyFileSync(join(tlsDir('good'), 'ca-cert.pem'), join(dir, 'ca-cert.pem'));
    const certless = new TlsCredsRegistry();
    await certless.objectAdd({ 'qom-type': 'tls-creds-x509', id: 'anon', dir, endpoint: 'client' });
    const l = await tlsListener(reg.settings({ 'tls-creds': 'srv' }, 'server'));
    const accepted = rejectionOf(l.accept({ timeoutMs: 5000 }));
    const fate = clientFate(connect(l.uri, { tls: certless.settings({ 'tls-creds': 'anon' }, 'client') }));
    expect((await accepted).code).toBe('E_TLS');
    expect(['E_TLS', 'E_EOF', 'E_CLOSED']).toContain(await fate);
  });

  it('tls-authz: a verified client whose DN is not allowed is refused with E_TLS_AUTHZ', async () => {
    const l = await tlsListener(reg.settings({ 'tls-creds': 'srv', 'tls-authz': 'someone-else' }, 'server'));
    const accepted = rejectionOf(l.accept({ timeoutMs: 5000 }));
    const fate = clientFate(connect(l.uri, { tls: reg.settings({ 'tls-creds': 'cli' }, 'client') }));
    const e = await accepted;
    expect(e.code).toBe('E_TLS_AUTHZ');
    expect(e.peerDn).toBe(CLIENT_DN);
    expect(e.message).toContain(`client "${CLIENT_DN}" is not allowed by tls-authz "someone-else"`);
    expect(['E_TLS', 'E_EOF', 'E_CLOSED']).toContain(await fate);
  });

  it('tls-authz: authz-list glob rules over the RFC 4514 DN', async () => {
    const l = await tlsListener(reg.settings({ 'tls-creds': 'srv', 'tls-authz': 'glob' }, 'server'));
    track(await connect(l.uri, { tls: reg.settings({ 'tls-creds': 'cli' }, 'client') }));
    const s = track(await l.accept({ timeoutMs: 5000 }));
    expect(s.info.tls?.peerDn).toBe(CLIENT_DN);
  });

  it('over a unix socket, TLS needs tls-hostname', async () => {
    const { dir, remove } = tempDir();
    cleanups.push(remove);
    const uri = `unix:${join(dir, 'tls.sock')}`;
    const l = await tlsListener(reg.settings({ 'tls-creds': 'srv' }, 'server'), uri);
    const e = await rejectionOf(connect(uri, { tls: reg.settings({ 'tls-creds': 'cli' }, 'client') }));
    expect(e.code).toBe('E_TLS');
    expect(e.message).toMatch(/set tls-hostname/);
    const c = track(
      await connect(uri, { tls: reg.settings({ 'tls-creds': 'cli', 'tls-hostname': 'localhost' }, 'client') }),
    );
    // the refused attempt above was queued first: it fails its handshake, the next one is ours
    await rejectionOf(l.accept({ timeoutMs: 5000 }));
    const s = track(await l.accept({ timeoutMs: 5000 }));
    await c.write(Uint8Array.of(5));
    await c.flush();
    expect([...(await s.readExactly(1))]).toEqual([5]);
  });

  it('keeps arrival order even though TLS handshakes finish in any order', async () => {
    const l = await tlsListener(reg.settings({ 'tls-creds': 'srv' }, 'server'));
    const tls = reg.settings({ 'tls-creds': 'cli' }, 'client');
    const clients: Channel[] = [];
    for (let i = 0; i < 3; i++) {
      const c = track(await connect(l.uri, { tls }));
      await c.write(Uint8Array.of(i));
      await c.flush();
      clients.push(c);
    }
    for (let i = 0; i < 3; i++) {
      const s = track(await l.accept({ timeoutMs: 5000 }));
      expect(s.info.remotePort).toBe(clients[i]?.info.localPort);
      expect([...(await s.readExactly(1))]).toEqual([i]);
    }
  });

  it('a client that never completes its handshake times out without blocking later ones', async () => {
    const l = await tlsListener(reg.settings({ 'tls-creds': 'srv' }, 'server'), 'tcp:127.0.0.1:0', 200);
    const port = (l.address as { port: number }).port;
    const silent = netConnect(port, '127.0.0.1');
    silent.on('error', () => undefined);
    cleanups.push(() => silent.destroy());
    await new Promise((r) => silent.once('connect', r));
    const good = track(await connect(l.uri, { tls: reg.settings({ 'tls-creds': 'cli' }, 'client') }));
    const first = await rejectionOf(l.accept({ timeoutMs: 5000 }));
    expect(first.code).toBe('E_TIMEOUT');
    expect(first.message).toMatch(/TLS handshake/);
    const second = track(await l.accept({ timeoutMs: 5000 }));
    expect(second.info.remotePort).toBe(good.info.localPort);
  });

  it('closing the listener drops connections still in their TLS handshake', async () => {
    const l = await listen('tcp:127.0.0.1:0', { tls: reg.settings({ 'tls-creds': 'srv' }, 'server') });
    const silent = netConnect((l.address as { port: number }).port, '127.0.0.1');
    silent.on('error', () => undefined);
    cleanups.push(() => silent.destroy());
    await new Promise((r) => silent.once('connect', r));
    for (let i = 0; i < 200 && l.pending === 0; i++) await sleep(5);
    expect(l.pending).toBe(1);
    const closedByServer = new Promise((r) => silent.once('end', r));
    await l.close();
    await closedByServer;
  });

  it('a TLS connect to a server that never answers times out', async () => {
    const mute = createServer(() => undefined);
    await new Promise<void>((r) => mute.listen(0, '127.0.0.1', r));
    cleanups.push(() => {
      mute.close();
      for (const s of [...sockets]) s.destroy();
    });
    const sockets = new Set<import('node:net').Socket>();
    mute.on('connection', (s) => sockets.add(s));
    const port = (mute.address() as { port: number }).port;
    const e = await rejectionOf(
      connect(`tcp:127.0.0.1:${port}`, { timeoutMs: 200, tls: reg.settings({ 'tls-creds': 'cli' }, 'client') }),
    );
    expect(e.code).toBe('E_TIMEOUT');
  });

  it('cancel over TLS resets the connection: the peer read fails promptly', async () => {
    const l = await tlsListener(reg.settings({ 'tls-creds': 'srv' }, 'server'));
    const c = track(await connect(l.uri, { tls: reg.settings({ 'tls-creds': 'cli' }, 'client') }));
    const s = track(await l.accept({ timeoutMs: 5000 }));
    // mid-stream, as a cancelled migration would be
    await c.write(patternBytes(1 << 20, 4));
    await s.readExactly(1 << 20);
    await s.write(Uint8Array.of(1));
    await c.readExactly(1);
    const pending = rejectionOf(s.readExactly(10));
    c.cancel();
    const e = await pending;
    expect(e.code).toBe('E_CLOSED');
    expect(e.errno).toBe('ECONNRESET');
  });

  it('rejects credentials for the wrong endpoint and TLS on pipes and files', async () => {
    const l = await tlsListener(null);
    const e = await rejectionOf(connect(l.uri, { tls: { creds: reg.creds('srv') } }));
    expect(e.code).toBe('E_TLS_CREDS');
    expect(e.message).toMatch(/endpoint "server"; connecting needs "client"/);
    expect((await rejectionOf(connect('exec:cat', { tls: { creds: reg.creds('cli') } }))).code).toBe('E_TLS');
    expect((await rejectionOf(listen('file:/tmp/x', { tls: { creds: reg.creds('srv') } }))).code).toBe('E_TLS');
  });
});
