import type { MigrationUri } from './uri.js';

/** The QEMU spelling of a parsed URI; `parseUri(formatUri(u))` equals `u`. */
export function formatUri(uri: MigrationUri): string {
  switch (uri.transport) {
    case 'tcp':
      return `tcp:${uri.host.includes(':') ? `[${uri.host}]` : uri.host}:${uri.port}`;
    case 'unix':
      return `unix:${uri.path}`;
    case 'fd':
      return `fd:${uri.fd}`;
    case 'exec':
      return `exec:${uri.command}`;
    case 'file':
      return uri.offset === 0 ? `file:${uri.path}` : `file:${uri.path},offset=${uri.offset}`;
  }
}
