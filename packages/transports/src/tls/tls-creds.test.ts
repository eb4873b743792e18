import { copyFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { CLIENT_DN, rejectionOf, tempDir, tlsDir } from '../../test/helpers.js';
import { tlsSettingsFromCli } from './tls-cli.js';
import { loadTlsCredsX509 } from './tls-creds.js';
import { TlsCredsRegistry } from './tls-creds-registry.js';

const cleanups: Array<() => void> = [];
afterEach(() => {
  for (const c of cleanups.splice(0)) c();
});
function dirWith(files: Array<[from: string, name: string]>): string {
  const t = tempDir();
  cleanups.push(t.remove);
  for (const [from, name] of files) copyFileSync(from, join(t.dir, name));
  return t.dir;
}
const good = (f: string): string => join(tlsDir('good'), f);

describe('loadTlsCredsX509 (QEMU directory layout)', () => {
  it('loads server and client credentials and reports their own DN', async () => {
    const s = await loadTlsCredsX509(tlsDir('good'), 'server');
    expect(s).toMatchObject({ endpoint: 'server', verifyPeer: true, ownDn: 'CN=localhost,O=e2k-migrate', id: null });
    const c = await loadTlsCredsX509(tlsDir('good'), 'client', { verifyPeer: false, id: 'c0' });
    expect(c).toMatchObject({ endpoint: 'client', verifyPeer: false, ownDn: CLIENT_DN, id: 'c0' });
  });

  it('a client without its own certificate is allowed (the server may still refuse it)', async () => {
    const dir = dirWith([[good('ca-cert.pem'), 'ca-cert.pem']]);
    expect((await loadTlsCredsX509(dir, 'client')).ownDn).toBeNull();
  });

  it('names the missing file', async () => {
    const e1 = await rejectionOf(loadTlsCredsX509('/nonexistent-e2k', 'client'));
    expect(e1.code).toBe('E_TLS_CREDS');
    expect(e1.message).toMatch(/missing ca-cert.pem \(needed for endpoint client\)/);
    const e2 = await rejectionOf(loadTlsCredsX509(tlsDir('untrusted-ca'), 'server'));
    expect(e2.message).toMatch(/missing server-cert.pem/);
    expect(e2.uri).toBe(join(tlsDir('untrusted-ca'), 'server-cert.pem'));
    const half = dirWith([
      [good('ca-cert.pem'), 'ca-cert.pem'],
      [good('client-cert.pem'), 'client-cert.pem'],
    ]);
    expect((await rejectionOf(loadTlsCredsX509(half, 'client'))).message).toMatch(
      /client-key.pem is missing while its pair is present/,
    );
  });

  it('sanity check: own certificate must come from the CA and match the key', async () => {
    const e = await rejectionOf(loadTlsCredsX509(tlsDir('rogue-client'), 'client'));
    expect(e.code).toBe('E_TLS_CREDS');
    expect(e.message).toMatch(/client-cert.pem \(CN=client.example,O=e2k-migrate\) is not signed by ca-cert.pem/);
    expect((await loadTlsCredsX509(tlsDir('rogue-client'), 'client', { sanityCheck: false })).ownDn).toBe(CLIENT_DN);
    const mismatched = dirWith([
      [good('ca-cert.pem'), 'ca-cert.pem'],
      [good('server-cert.pem'), 'server-cert.pem'],
      [join(tlsDir('rogue-server'), 'server-key.pem'), 'server-key.pem'],
    ]);
    expect((await rejectionOf(loadTlsCredsX509(mismatched, 'server'))).message).toMatch(
      /server-key.pem does not belong to server-cert.pem/,
    );
  });

  it('rejects files that are not PEM', async () => {
    const dir = dirWith([
      [good('ca-cert.pem'), 'ca-cert.pem'],
      [good('server-key.pem'), 'server-key.pem'],
    ]);
    writeFileSync(join(dir, 'server-cert.pem'), 'hello');
    const e = await rejectionOf(loadTlsCredsX509(dir, 'server'));
    expect(e.code).toBe('E_TLS_CREDS');
    expect(e.message).toMatch(/server-cert.pem is not a PEM certificate/);
  });
});

describe('TlsCredsRegistry (object-add / migration parameters)', () => {
  it('resolves tls-creds, tls-hostname and tls-authz for each side', async () => {
    const reg = new TlsCredsRegistry();
    await reg.objectAdd({
      'qom-type': 'tls-creds-x509',
      id: 'tls0',
      dir: tlsDir('good'),
      endpoint: 'server',
      'verify-peer': 'on',
    });
    await reg.objectAdd({ 'qom-type': 'tls-creds-x509', id: 'tls1', props: { dir: tlsDir('good') } });
    await reg.objectAdd({ 'qom-type': 'authz-simple', id: 'auth0', identity: CLIENT_DN });
    expect(reg.list()).toEqual([
      { id: 'tls0', 'qom-type': 'tls-creds-x509' },
      { id: 'tls1', 'qom-type': 'tls-creds-x509' },
      { id: 'auth0', 'qom-type': 'authz-simple' },
    ]);
    const server = reg.settings({ 'tls-creds': 'tls0', 'tls-authz': 'auth0', 'tls-hostname': 'ignored' }, 'server');
    expect(server?.creds.endpoint).toBe('server');
    expect(server?.authz?.isAllowed(CLIENT_DN)).toBe(true);
    expect(server?.hostname).toBeUndefined();
    const client = reg.settings({ 'tls-creds': 'tls1', 'tls-hostname': 'localhost' }, 'client');
    expect(client?.creds.endpoint).toBe('client');
    expect(client?.hostname).toBe('localhost');
    expect(reg.settings({ 'tls-creds': '' }, 'client')).toBeNull();
    expect(reg.settings({}, 'server')).toBeNull();
    expect(() => reg.settings({ 'tls-creds': 'tls0' }, 'client')).toThrow(
      /endpoint "server" but an outgoing migration needs "client"/,
    );
    reg.objectDel('auth0');
    expect(() => reg.settings({ 'tls-creds': 'tls0', 'tls-authz': 'auth0' }, 'server')).toThrow(
      /no authz object "auth0"/,
    );
  });

  it('rejects malformed objects with E_BAD_OBJECT', async () => {
    const reg = new TlsCredsRegistry();
    await reg.objectAdd({ 'qom-type': 'authz-list', id: 'a', rules: [] });
    const cases: Array<[Record<string, unknown>, RegExp]> = [
      [{ 'qom-type': 'authz-simple', id: 'a', identity: 'x' }, /duplicate object id "a"/],
      [{ 'qom-type': 'authz-simple', id: '9bad', identity: 'x' }, /not a valid object id/],
      [{ 'qom-type': 'tls-creds-psk', id: 'p', dir: '/x' }, /qom-type "tls-creds-psk" is not supported/],
      [{ 'qom-type': 'tls-creds-x509', id: 'n' }, /"dir" .* is required/],
      [
        { 'qom-type': 'tls-creds-x509', id: 'n', dir: '/x', endpoint: 'both' },
        /"endpoint" must be "server" or "client"/,
      ],
      [
        { 'qom-type': 'tls-creds-x509', id: 'n', dir: '/x', passwordid: 's' },
        /encrypted private keys are not supported/,
      ],
      [{ 'qom-type': 'tls-creds-x509', id: 'n', dir: '/x', 'verify-peer': 'maybe' }, /"verify-peer" must be a boolean/],
      [{ 'qom-type': 'authz-simple', id: 's' }, /"identity" .* is required/],
      [{ 'qom-type': 'authz-list', id: 'l', policy: 'perhaps' }, /policy must be "allow" or "deny"/],
    ];
    for (const [args, why] of cases) {
      const e = await rejectionOf(reg.objectAdd(args as never));
      expect(e.code, JSON.stringify(args)).toBe('E_BAD_OBJECT');
      expect(e.message).toMatch(why);
    }
    expect(() => reg.creds('a')).toThrow(/"a" is an authz object/);
    expect(() => reg.objectDel('zz')).toThrow(/no object with id "zz"/);
  });

  it('--tls-creds DIR builds the same settings from a command line', async () => {
    expect(await tlsSettingsFromCli({}, 'client')).toBeNull();
    const c = await tlsSettingsFromCli({ tlsCreds: tlsDir('good'), tlsHostname: 'localhost' }, 'client');
    expect(c?.creds.ownDn).toBe(CLIENT_DN);
    expect(c?.hostname).toBe('localhost');
    const s = await tlsSettingsFromCli({ tlsCreds: tlsDir('good'), tlsAuthz: [CLIENT_DN, 'CN=b'] }, 'server');
    expect(s?.authz?.isAllowed(CLIENT_DN)).toBe(true);
    expect(s?.authz?.isAllowed('CN=c')).toBe(false);
  });
});
