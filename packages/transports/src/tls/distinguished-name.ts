import type { X509Certificate } from 'node:crypto';

/** One attribute of a DN: `type=value` (value unescaped). */
export interface Ava {
  type: string;
  value: string;
}

/** A relative distinguished name: one or more attributes joined by `+`. */
export type Rdn = Ava[];

/**
 * Attribute types GnuTLS (and so QEMU's `tls-authz` identities) spells differently from
 * OpenSSL's short names.
 */
const GNUTLS_TYPE: Record<string, string> = { emailAddress: 'EMAIL', street: 'STREET' };

/** Spellings that name the same attribute type, for comparing DNs. */
const TYPE_ALIASES: Record<string, string> = {
  EMAILADDRESS: 'EMAIL',
  E: 'EMAIL',
  S: 'ST',
  '2.5.4.3': 'CN',
  '2.5.4.10': 'O',
  '2.5.4.11': 'OU',
  '2.5.4.6': 'C',
  '2.5.4.7': 'L',
  '2.5.4.8': 'ST',
};

/**
 * The subject of a certificate as an RFC 4514 string, the form GnuTLS prints and QEMU's
 * `authz-simple` / `authz-list` identities use: most specific RDN first, RDNs joined by `,`
 * with no spaces, multi-valued RDNs joined by `+`, special characters escaped with `\`.
 * A certificate issued for `/O=e2k-migrate/CN=client.example` gives
 * `CN=client.example,O=e2k-migrate`.
 */
export function subjectDn(cert: X509Certificate): string {
  // node prints the subject one RDN per line in certificate order, RFC 2253-escaped; RFC 4514
  // lists the RDNs in reverse order.
  const lines = cert.subject.split('\n').filter((l) => l !== '');
  return lines
    .reverse()
    .map((line) =>
      line
        .split(' + ')
        .map((ava) => {
          const eq = ava.indexOf('=');
          const type = ava.slice(0, eq);
          return `${GNUTLS_TYPE[type] ?? type}=${ava.slice(eq + 1)}`;
        })
        .join('+'),
    )
    .join(',');
}

/**
 * Parses an RFC 4514 DN string (lenient: spaces around separators are ignored, `;` also
 * separates RDNs). Returns null when it is malformed.
 */
export function parseDn(text: string): Rdn[] | null {
  const rdns: Rdn[] = [];
  let rdn: Rdn = [];
  let i = 0;
  const n = text.length;
  const skipSpaces = (): void => {
    while (i < n && text[i] === ' ') i++;
  };
  skipSpaces();
  if (i === n) return [];
  for (;;) {
    skipSpaces();
    const eq = text.indexOf('=', i);
    if (eq < 0) return null;
    const type = text.slice(i, eq).trim();
    if (!/^([A-Za-z][A-Za-z0-9-]*|\d+(\.\d+)*)$/.test(type)) return null;
    i = eq + 1;
    skipSpaces();
    const bytes: number[] = [];
    let trailingSpaces = 0;
    while (i < n && text[i] !== ',' && text[i] !== ';' && text[i] !== '+') {
      const c = text[i] as string;
      if (c === '\\') {
        const next = text.slice(i + 1, i + 3);
        if (/^[0-9a-fA-F]{2}$/.test(next)) {
          bytes.push(Number.parseInt(next, 16));
          i += 3;
        } else if (i + 1 < n) {
          bytes.push(...Buffer.from(text[i + 1] as string));
          i += 2;
        } else return null;
        trailingSpaces = 0;
        continue;
      }
      trailingSpaces = c === ' ' ? trailingSpaces + 1 : 0;
      bytes.push(...Buffer.from(c));
      i++;
    }
    const value = Buffer.from(bytes.slice(0, bytes.length - trailingSpaces)).toString('utf8');
    rdn.push({ type, value });
    if (i === n) {
      rdns.push(rdn);
      return rdns;
    }
    if (text[i] === '+') {
      i++;
      continue;
    }
    rdns.push(rdn);
    rdn = [];
    i++;
  }
}

/** Canonical spelling of an attribute type for comparison. */
export function canonicalType(type: string): string {
  const up = type.toUpperCase();
  return TYPE_ALIASES[up] ?? up;
}

/**
 * True when two DN strings name the same DN: same RDNs in the same order, attribute types
 * compared case-insensitively (and `emailAddress` = `EMAIL`), values compared exactly after
 * unescaping. Malformed strings are equal only when byte-identical.
 */
export function dnEquals(a: string, b: string): boolean {
  if (a === b) return true;
  const pa = parseDn(a);
  const pb = parseDn(b);
  if (!pa || !pb || pa.length !== pb.length) return false;
  return pa.every((rdn, k) => rdnEquals(rdn, pb[k] as Rdn));
}

function rdnEquals(a: Rdn, b: Rdn): boolean {
  if (a.length !== b.length) return false;
  const key = (v: Ava): string => `${canonicalType(v.type)}=${v.value}`;
  const sa = a.map(key).sort();
  const sb = b.map(key).sort();
  return sa.every((s, k) => s === sb[k]);
}
