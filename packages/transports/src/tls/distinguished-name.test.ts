import { X509Certificate } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { CLIENT_DN, tlsDir } from '../../test/helpers.js';
import { canonicalType, dnEquals, parseDn, subjectDn } from './distinguished-name.js';

const cert = (dir: Parameters<typeof tlsDir>[0], name: string): X509Certificate =>
  new X509Certificate(readFileSync(join(tlsDir(dir), name)));

describe('subjectDn', () => {
  it('prints certificate subjects in RFC 4514 order, as GnuTLS/QEMU do', () => {
    expect(subjectDn(cert('good', 'client-cert.pem'))).toBe(CLIENT_DN);
    expect(subjectDn(cert('good', 'server-cert.pem'))).toBe('CN=localhost,O=e2k-migrate');
    expect(subjectDn(cert('good', 'ca-cert.pem'))).toBe('CN=e2k-migrate test CA,O=e2k-migrate');
    expect(subjectDn(cert('untrusted-ca', 'ca-cert.pem'))).toBe('CN=untrusted test CA,O=e2k-migrate rogue');
  });
});

describe('parseDn', () => {
  it('splits RDNs and multi-valued RDNs and unescapes values', () => {
    expect(parseDn('CN=client.example,O=e2k-migrate')).toEqual([
      [{ type: 'CN', value: 'client.example' }],
      [{ type: 'O', value: 'e2k-migrate' }],
    ]);
    expect(parseDn('CN=a+UID=7, O = Org\\, Inc ;C=GB')).toEqual([
      [
        { type: 'CN', value: 'a' },
        { type: 'UID', value: '7' },
      ],
      [{ type: 'O', value: 'Org, Inc' }],
      [{ type: 'C', value: 'GB' }],
    ]);
    expect(parseDn('CN=caf\\C3\\A9')).toEqual([[{ type: 'CN', value: 'café' }]]);
    expect(parseDn('CN=\\ lead\\ ')).toEqual([[{ type: 'CN', value: ' lead ' }]]);
    expect(parseDn('2.5.4.3=x')).toEqual([[{ type: '2.5.4.3', value: 'x' }]]);
    expect(parseDn('')).toEqual([]);
  });

  it('returns null for malformed strings', () => {
    expect(parseDn('no equals sign')).toBeNull();
    expect(parseDn('CN=x,=y')).toBeNull();
    expect(parseDn('CN=x\\')).toBeNull();
    expect(parseDn('C N=x')).toBeNull();
  });
});

describe('dnEquals', () => {
  it('accepts equivalent spellings of the same DN', () => {
    expect(dnEquals(CLIENT_DN, 'CN=client.example,O=e2k-migrate')).toBe(true);
    expect(dnEquals(CLIENT_DN, 'cn=client.example, o=e2k-migrate')).toBe(true);
    expect(dnEquals('EMAIL=a@b,CN=x', 'emailAddress=a@b,CN=x')).toBe(true);
    expect(dnEquals('CN=a+UID=1', 'UID=1+CN=a')).toBe(true);
    expect(dnEquals('2.5.4.3=x', 'CN=x')).toBe(true);
  });

  it('rejects a different order, value or value case', () => {
    expect(dnEquals(CLIENT_DN, 'O=e2k-migrate,CN=client.example')).toBe(false);
    expect(dnEquals(CLIENT_DN, 'CN=Client.example,O=e2k-migrate')).toBe(false);
    expect(dnEquals(CLIENT_DN, 'CN=client.example')).toBe(false);
    expect(dnEquals('garbage', 'garbage ')).toBe(false);
    expect(canonicalType('emailAddress')).toBe('EMAIL');
  });
});
