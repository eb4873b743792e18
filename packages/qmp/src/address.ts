import { QmpError } from './errors.js';

/** A monitor socket address: `unix:PATH` (or a bare path), or `tcp:HOST:PORT` (`[v6]:PORT` too). */
export type QmpAddress = { kind: 'unix'; path: string } | { kind: 'tcp'; host: string; port: number };

export function parseQmpAddress(text: string): QmpAddress {
  if (text.startsWith('unix:')) {
    const path = text.slice(5).split(',')[0] as string;
    if (!path) throw new QmpError('E_QMP_ADDRESS', `monitor address "${text}": empty unix socket path`);
    return { kind: 'unix', path };
  }
  if (text.startsWith('tcp:')) {
    const rest = text.slice(4).split(',')[0] as string;
    const m = /^(?:\[([^\]]+)\]|([^:]*)):(\d+)$/.exec(rest);
    const port = m ? Number(m[3]) : Number.NaN;
    if (!m || !Number.isInteger(port) || port < 0 || port > 65535) {
      throw new QmpError('E_QMP_ADDRESS', `monitor address "${text}": expected tcp:HOST:PORT with a port in 0..65535`);
    }
    return { kind: 'tcp', host: m[1] ?? (m[2] || '127.0.0.1'), port };
  }
  if (text.includes(':') || text === '') {
    throw new QmpError(
      'E_QMP_ADDRESS',
      `monitor address "${text}": expected unix:PATH, tcp:HOST:PORT or a socket path`,
    );
  }
  return { kind: 'unix', path: text };
}

export function formatQmpAddress(a: QmpAddress): string {
  return a.kind === 'unix' ? `unix:${a.path}` : `tcp:${a.host.includes(':') ? `[${a.host}]` : a.host}:${a.port}`;
}
