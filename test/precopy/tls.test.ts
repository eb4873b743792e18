/**
 * TLS migration configured the QEMU way: `object-add tls-creds-x509` on both sides,
 * `migrate-set-parameters tls-creds` (+ `tls-authz` on the destination), `migrate-incoming` after
 * `-incoming defer`. Certificates are verified both ways; a peer that is not trusted is refused
 * and the destination keeps listening, as QEMU's does.
 */
import { join } from 'node:path';
import { afterEach, beforeAll, describe, expect, it } from 'vitest';
import { buildCli, checkWorkload, listenTcp, queryMigrate, root, VmSet, waitMigrate, waitSteps } from './helpers.js';

beforeAll(() => buildCli(), 240_000);

let vms: VmSet;
afterEach(async () => {
  await vms?.close();
});

const ARGS = ['--mem', '32M', '--vcpus', '1', '--workload', 'random'];
const tlsDir = (name: string) => join(root, 'test', 'fixtures', 'tls', name);

async function pair(serverDir: string, clientDir: string, authzIdentity?: string) {
  vms = new VmSet();
  const dst = await vms.start('dst', [...ARGS, '--incoming', 'defer']);
  const src = await vms.start('src', ARGS);
  await dst.qmp.execute('object-add', {
    'qom-type': 'tls-creds-x509',
    id: 'tls0',
    dir: tlsDir(serverDir),
    endpoint: 'server',
    // the rogue directories hold certificates their ca-cert.pem did not sign (the point of the test)
    'sanity-check': !serverDir.startsWith('rogue'),
  });
  const params: Record<string, string> = { 'tls-creds': 'tls0' };
  if (authzIdentity) {
    await dst.qmp.execute('object-add', { 'qom-type': 'authz-simple', id: 'auth0', identity: authzIdentity });
    params['tls-authz'] = 'auth0';
  }
  await dst.qmp.execute('migrate-set-parameters', params);
  const uri = await listenTcp(dst);
  await src.qmp.execute('object-add', {
    'qom-type': 'tls-creds-x509',
    id: 'tls0',
    dir: tlsDir(clientDir),
    endpoint: 'client',
    'sanity-check': !clientDir.startsWith('rogue'),
  });
  await src.qmp.execute('migrate-set-parameters', { 'tls-creds': 'tls0', 'tls-hostname': '127.0.0.1' });
  await waitSteps(src, 100_000);
  return { src, dst, uri };
}

describe('TLS migration (x509, verified both ways)', () => {
  it('migrates over TLS with trusted certificates and an authz allow-list', async () => {
    const { src, dst, uri } = await pair('good', 'good', 'CN=client.example,O=e2k-migrate');
    expect((await src.qmp.execute('query-migrate-parameters')) as Record<string, unknown>).toMatchObject({
      'tls-creds': 'tls0',
      'tls-hostname': '127.0.0.1',
    });
    await src.qmp.execute('migrate', { uri });
    const q = await waitMigrate(src);
    expect(q['error-desc']).toBeUndefined();
    expect(q.status).toBe('completed');
    expect((await waitMigrate(dst)).status).toBe('completed');
    expect((await checkWorkload(dst)).ok).toBe(true);
  });

  it('refuses a destination whose certificate is not signed by a trusted CA', async () => {
    const { src, dst, uri } = await pair('rogue-server', 'good');
    await src.qmp.execute('migrate', { uri });
    const q = await waitMigrate(src);
    expect(q.status).toBe('failed');
    expect(q['error-desc']).toMatch(/^E_TLS: /);
    expect(((await src.qmp.execute('query-status')) as { status: string }).status).toBe('running');
    // the destination dropped that peer and is still waiting
    expect((await queryMigrate(dst)).status).toBe('setup');
  });

  it('refuses a source whose client certificate is untrusted, then accepts a trusted one', async () => {
    const { src, dst, uri } = await pair('good', 'rogue-client');
    await src.qmp.execute('migrate', { uri });
    const q = await waitMigrate(src);
    expect(q.status).toBe('failed');
    expect(q['error-desc']).toMatch(/^E_(TLS|CLOSED|EOF|IO): /);
    expect(((await src.qmp.execute('query-status')) as { status: string }).status).toBe('running');
    expect((await queryMigrate(dst)).status).toBe('setup');
    expect(vms.log('dst')).toMatch(/incoming connection refused: E_TLS/);
    // the same destination then takes a migration from a trusted source
    const good = await vms.start('src2', ARGS);
    await good.qmp.execute('object-add', {
      'qom-type': 'tls-creds-x509',
      id: 'tls0',
      dir: tlsDir('good'),
      endpoint: 'client',
    });
    await good.qmp.execute('migrate-set-parameters', { 'tls-creds': 'tls0' });
    await good.qmp.execute('migrate', { uri });
    expect((await waitMigrate(good)).status).toBe('completed');
    expect((await waitMigrate(dst)).status).toBe('completed');
  });

  it('refuses a trusted client whose identity the tls-authz object does not allow', async () => {
    const { src, dst, uri } = await pair('good', 'good', 'CN=somebody-else,O=e2k-migrate');
    await src.qmp.execute('migrate', { uri });
    const q = await waitMigrate(src);
    expect(q.status).toBe('failed');
    expect((await queryMigrate(dst)).status).toBe('setup');
    expect(vms.log('dst')).toMatch(/incoming connection refused: E_TLS_AUTHZ/);
  });
});
