import { spawnSync } from 'node:child_process';
import { closeSync, constants, openSync, readFileSync, writeFileSync } from 'node:fs';
import { createServer, connect as netConnect, type Socket } from 'node:net';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { patternBytes, rejectionOf, sha256, tempDir } from '../test/helpers.js';
import { connect } from './connect.js';
import { fdKind } from './fd-io.js';
import { listen } from './listen.js';

const cleanups: Array<() => unknown> = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});
function tmp(): string {
  const t = tempDir();
  cleanups.push(t.remove);
  return t.dir;
}

describe('fd:', () => {
  it('classifies descriptors with fstat', async () => {
    const dir = tmp();
    const file = join(dir, 'f');
    writeFileSync(file, 'x');
    const fileFd = openSync(file, 'r');
    const dirFd = openSync(dir, 'r');
    cleanups.push(
      () => closeSync(fileFd),
      () => closeSync(dirFd),
    );
    expect(fdKind(fileFd)).toBe('file');
    expect(fdKind(dirFd)).toBe('directory');
    // a connected socket, inspected (fstat only) through node's handle
    const server = createServer();
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    const sock: Socket = netConnect((server.address() as { port: number }).port, '127.0.0.1');
    await new Promise((r) => sock.once('connect', r));
    cleanups.push(() => {
      sock.destroy();
      server.close();
    });
    const sockFd = (sock as unknown as { _handle: { fd: number } })._handle.fd;
    expect(fdKind(sockFd)).toBe('socket');
  });

  it('writes an outgoing stream into a file descriptor and reads an incoming one from it', async () => {
    const path = join(tmp(), 'state');
    const src = patternBytes(2 << 20, 77);
    const wfd = openSync(path, 'w');
    const out = await connect(`fd:${wfd}`);
    expect(out.info).toMatchObject({ transport: 'fd', writable: true, readable: false });
    expect(out.info.peer).toBe(`fd ${wfd} (file)`);
    await out.write(src);
    await out.end();
    expect(sha256([readFileSync(path)])).toBe(sha256([src]));
    const rfd = openSync(path, 'r');
    const ch = await (await listen(`fd:${rfd}`)).accept();
    expect(sha256([await ch.readExactly(src.length)])).toBe(sha256([src]));
    expect(await ch.read()).toBeNull();
  });

  it('carries a stream through a pipe (FIFO) descriptor', async () => {
    const fifo = join(tmp(), 'fifo');
    const made = spawnSync('mkfifo', [fifo]);
    expect(made.status).toBe(0);
    // O_RDWR never blocks on a FIFO (Linux); the reader opens its own end.
    const wfd = openSync(fifo, constants.O_RDWR);
    const rfd = openSync(fifo, constants.O_RDONLY | constants.O_NONBLOCK);
    expect(fdKind(wfd)).toBe('fifo');
    const out = await connect(`fd:${wfd}`);
    const l = await listen(`fd:${rfd}`);
    const inc = await l.accept();
    cleanups.push(
      () => out.cancel(),
      () => inc.cancel(),
    );
    expect(inc.info).toMatchObject({ transport: 'fd', readable: true, writable: false });
    const src = patternBytes(3 << 20, 13);
    const writer = out.write(src).then(() => out.end());
    expect(sha256([await inc.readExactly(src.length)])).toBe(sha256([src]));
    await writer;
  });

  it('refuses descriptors that are not open or not streams', async () => {
    const e = await rejectionOf(connect('fd:987654'));
    expect(e.code).toBe('E_FD');
    expect(e.errno).toBe('EBADF');
    const dfd = openSync(tmp(), 'r');
    cleanups.push(() => closeSync(dfd));
    const e2 = await rejectionOf(listen(`fd:${dfd}`));
    expect(e2.code).toBe('E_FD');
    expect(e2.message).toMatch(/is a directory/);
  });
});
