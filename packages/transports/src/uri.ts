/**
 * A parsed migration URI, spelled as QEMU spells them (`migrate`, `-incoming`).
 *
 * | form                     | outgoing (`connect`)                    | incoming (`listen`)                      |
 * |--------------------------|-----------------------------------------|------------------------------------------|
 * | `tcp:HOST:PORT`          | TCP connection                          | listen; `PORT` 0 = any free port         |
 * | `tcp:[IPV6]:PORT`        | same, IPv6 literal in brackets          | same                                     |
 * | `unix:PATH`              | connect to a unix socket                | listen on a unix socket (stale one unlinked) |
 * | `fd:N`                   | inherited descriptor (socket/pipe/file) | same                                     |
 * | `exec:CMD`               | `sh -c CMD`, stream to its stdin        | `sh -c CMD`, stream from its stdout      |
 * | `file:PATH[,offset=N]`   | create/truncate PATH, write at offset N | read PATH from offset N                  |
 */
export type MigrationUri = TcpUri | UnixUri | FdUri | ExecUri | FileUri;

export interface TcpUri {
  transport: 'tcp';
  /** Host name or IP literal (IPv6 without brackets); empty = all interfaces (listen only). */
  host: string;
  /** 0 = any free port (listen only). */
  port: number;
}

export interface UnixUri {
  transport: 'unix';
  path: string;
}

export interface FdUri {
  transport: 'fd';
  fd: number;
}

export interface ExecUri {
  transport: 'exec';
  /** Run as `sh -c COMMAND`. */
  command: string;
}

export interface FileUri {
  transport: 'file';
  path: string;
  /** Byte offset to start writing / reading at (default 0). */
  offset: number;
}

export type TransportKind = MigrationUri['transport'];

/** The forms `parseUri` accepts, listed in every E_BAD_URI message. */
export const ACCEPTED_URI_FORMS = [
  'tcp:HOST:PORT',
  'tcp:[IPV6]:PORT',
  'unix:PATH',
  'fd:N',
  'exec:CMD',
  'file:PATH[,offset=N]',
] as const;

/** Longest unix socket path Linux accepts (sun_path is 108 bytes including the NUL). */
export const UNIX_PATH_MAX = 107;
