import { TransportError } from './errors.js';
import { ACCEPTED_URI_FORMS, type FileUri, type MigrationUri, type TcpUri, UNIX_PATH_MAX } from './uri.js';

/** Schemes QEMU knows that e2k-migrate does not implement. */
const UNSUPPORTED_SCHEMES: Record<string, string> = {
  rdma: 'RDMA needs an InfiniBand/RoCE device and is not implemented',
  vsock: 'vsock transports are not implemented',
};

/**
 * Parses a migration URI as QEMU spells it.
 * @throws TransportError `E_BAD_URI` saying exactly what is wrong and listing the accepted forms.
 */
export function parseUri(input: string): MigrationUri {
  if (typeof input !== 'string') throw badUri(String(input), 'a URI must be a string');
  const colon = input.indexOf(':');
  if (colon <= 0) {
    throw badUri(input, input === '' ? 'the URI is empty' : 'missing transport prefix (such as "tcp:")');
  }
  const scheme = input.slice(0, colon);
  const rest = input.slice(colon + 1);
  switch (scheme) {
    case 'tcp':
      return parseTcp(input, rest);
    case 'unix':
      return parseUnix(input, rest);
    case 'fd':
      return parseFd(input, rest);
    case 'exec':
      if (rest.trim() === '') throw badUri(input, 'exec: needs a command after the colon');
      return { transport: 'exec', command: rest };
    case 'file':
      return parseFile(input, rest);
    default: {
      const why = UNSUPPORTED_SCHEMES[scheme];
      throw badUri(input, why ? `"${scheme}:" is not supported: ${why}` : `unknown transport "${scheme}:"`);
    }
  }
}

function parseTcp(input: string, rest: string): TcpUri {
  const comma = rest.indexOf(',');
  if (comma >= 0) {
    throw badUri(input, `tcp: options ("${rest.slice(comma)}") are not supported; use tcp:HOST:PORT`);
  }
  let host: string;
  let portText: string;
  if (rest.startsWith('[')) {
    const close = rest.indexOf(']');
    if (close < 0) throw badUri(input, 'IPv6 address is missing its closing "]"');
    host = rest.slice(1, close);
    if (host === '' || !host.includes(':')) throw badUri(input, `"[${host}]" is not an IPv6 address`);
    const after = rest.slice(close + 1);
    if (!after.startsWith(':')) throw badUri(input, `expected ":PORT" after "[${host}]", found "${after}"`);
    portText = after.slice(1);
  } else {
    const sep = rest.indexOf(':');
    if (sep < 0) throw badUri(input, `missing ":PORT" after host "${rest}"`);
    host = rest.slice(0, sep);
    portText = rest.slice(sep + 1);
    if (portText.includes(':')) {
      throw badUri(input, 'an IPv6 address must be written in brackets, as in tcp:[::1]:4444');
    }
  }
  if (portText === '') throw badUri(input, `missing port number after "${host}:"`);
  if (!/^\d{1,5}$/.test(portText) || Number(portText) > 65535) {
    throw badUri(input, `port "${portText}" is not a number from 0 to 65535`);
  }
  return { transport: 'tcp', host, port: Number(portText) };
}

function parseUnix(input: string, path: string): MigrationUri {
  if (path === '') throw badUri(input, 'unix: needs a socket path');
  const bytes = Buffer.byteLength(path);
  if (bytes > UNIX_PATH_MAX) {
    throw badUri(input, `unix socket path is ${bytes} bytes long; the limit is ${UNIX_PATH_MAX}`);
  }
  if (path.includes('\0')) throw badUri(input, 'unix socket path contains a NUL byte');
  return { transport: 'unix', path };
}

function parseFd(input: string, text: string): MigrationUri {
  if (text === '') throw badUri(input, 'fd: needs a descriptor number');
  if (!/^\d+$/.test(text)) {
    throw badUri(input, `"${text}" is not a descriptor number (named descriptors from getfd are not supported)`);
  }
  const fd = Number(text);
  if (!Number.isSafeInteger(fd) || fd > 0x7fffffff) throw badUri(input, `descriptor ${text} is out of range`);
  return { transport: 'fd', fd };
}

const OFFSET_OPTION = ',offset=';
const SIZE_SUFFIX: Record<string, number> = { '': 1, b: 1, k: 2 ** 10, m: 2 ** 20, g: 2 ** 30, t: 2 ** 40, p: 2 ** 50 };

function parseFile(input: string, spec: string): FileUri {
  // Like QEMU: the first ",offset=" splits the path from the offset; other commas belong to the path.
  const at = spec.indexOf(OFFSET_OPTION);
  const path = at >= 0 ? spec.slice(0, at) : spec;
  if (path === '') throw badUri(input, 'file: needs a path');
  if (path.includes('\0')) throw badUri(input, 'file path contains a NUL byte');
  if (at < 0) return { transport: 'file', path, offset: 0 };
  const text = spec.slice(at + OFFSET_OPTION.length);
  return { transport: 'file', path, offset: parseOffset(input, text) };
}

/** A size like QEMU's: decimal or 0x hex, optional binary suffix B/K/M/G/T/P. */
function parseOffset(input: string, text: string): number {
  const m = /^(0x[0-9a-f]+|\d+)([bkmgtp]?)$/i.exec(text);
  if (!m) {
    throw badUri(input, `offset "${text}" is not a byte count (decimal or 0x hex, optional suffix K/M/G/T/P)`);
  }
  const base = Number(m[1]);
  const value = base * (SIZE_SUFFIX[(m[2] ?? '').toLowerCase()] ?? 1);
  if (!Number.isSafeInteger(value)) throw badUri(input, `offset "${text}" is larger than 2^53-1 bytes`);
  return value;
}

function badUri(input: string, what: string): TransportError {
  return new TransportError(
    'E_BAD_URI',
    `bad migration URI "${input}": ${what}; accepted forms: ${ACCEPTED_URI_FORMS.join(', ')}`,
    { uri: input },
  );
}
