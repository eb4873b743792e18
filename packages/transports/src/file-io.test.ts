import { mkdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { patternBytes, rejectionOf, sha256, tempDir } from '../test/helpers.js';
import { connect } from './connect.js';
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

describe('file:', () => {
  it('writes a stream to a new file (mode 0600) and reads it back', async () => {
    const path = join(tmp(), 'vm.state');
    const src = patternBytes(5 << 20, 31);
    const out = await connect(`file:${path}`, { fsync: true });
    expect(out.info).toMatchObject({ transport: 'file', peer: path, readable: false, writable: true });
    await out.write(src);
    await out.end();
    expect(statSync(path).mode & 0o777).toBe(0o600);
    expect(sha256([readFileSync(path)])).toBe(sha256([src]));
    const l = await listen(`file:${path}`);
    const ch = await l.accept();
    const parts: Uint8Array[] = [];
    for await (const c of ch) parts.push(c);
    expect(sha256(parts)).toBe(sha256([src]));
    expect(ch.bytesRead).toBe(src.length);
    expect((await rejectionOf(l.accept())).code).toBe('E_CLOSED');
    expect((await rejectionOf(out.read())).code).toBe('E_ONE_WAY');
  });

  it('honours offset=N both ways; outgoing truncates first, as QEMU opens with O_TRUNC', async () => {
    const path = join(tmp(), 'with-header');
    writeFileSync(path, Buffer.alloc(10_000, 0xee));
    const src = patternBytes(70_000, 5);
    const out = await connect(`file:${path},offset=4K`);
    await out.write(src);
    await out.end();
    const all = readFileSync(path);
    expect(all.length).toBe(4096 + src.length);
    expect(all.subarray(0, 4096).every((b) => b === 0)).toBe(true);
    expect(sha256([all.subarray(4096)])).toBe(sha256([src]));
    const l = await listen(`file:${path},offset=0x1000`);
    const ch = await l.accept();
    expect(sha256([await ch.readExactly(src.length)])).toBe(sha256([src]));
    expect(await ch.read()).toBeNull();
  });

  it('an offset past the end reads as an empty stream', async () => {
    const path = join(tmp(), 'short');
    writeFileSync(path, 'abc');
    const ch = await (await listen(`file:${path},offset=100`)).accept();
    const e = await rejectionOf(ch.readExactly(4));
    expect(e.code).toBe('E_EOF');
    expect(e.got).toBe(0);
  });

  it('missing files and directories are E_FILE with the errno', async () => {
    const dir = tmp();
    const e1 = await rejectionOf(listen(`file:${join(dir, 'absent')}`));
    expect(e1.code).toBe('E_FILE');
    expect(e1.errno).toBe('ENOENT');
    expect(e1.message).toMatch(/cannot open/);
    const e2 = await rejectionOf(connect(`file:${join(dir, 'no-such-dir', 'x')}`));
    expect(e2.code).toBe('E_FILE');
    expect(e2.errno).toBe('ENOENT');
    mkdirSync(join(dir, 'sub'));
    const e3 = await rejectionOf(connect(`file:${join(dir, 'sub')}`));
    expect(e3.code).toBe('E_FILE');
    expect(e3.errno).toBe('EISDIR');
  });

  it('writing to a full device is E_FILE ENOSPC', async () => {
    let ok = true;
    try {
      statSync('/dev/full');
    } catch {
      ok = false;
    }
    if (!ok) return;
    const ch = await connect('file:/dev/full');
    const e = await rejectionOf(
      (async () => {
        await ch.write(patternBytes(1 << 20, 1));
        await ch.end();
      })(),
    );
    expect(e.code).toBe('E_FILE');
    expect(e.errno).toBe('ENOSPC');
  });
});
