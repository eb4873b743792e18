import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { patternBytes, rejectionOf, sha256, sleep, tempDir } from '../test/helpers.js';
import type { Channel } from './channel.js';
import { connect } from './connect.js';
import { listen } from './listen.js';

const cleanups: Array<() => unknown> = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});
function track<T extends Channel>(ch: T): T {
  cleanups.push(() => ch.cancel());
  return ch;
}
function tmp(): string {
  const t = tempDir();
  cleanups.push(t.remove);
  return t.dir;
}
const q = (s: string): string => `'${s.replaceAll("'", `'\\''`)}'`;

async function readAll(ch: Channel): Promise<Uint8Array[]> {
  const parts: Uint8Array[] = [];
  for await (const c of ch) parts.push(c);
  return parts;
}

describe('exec: outgoing (stream to the command stdin)', () => {
  it('writes the stream through sh -c and end() resolves after a clean exit', async () => {
    const out = join(tmp(), 'out.bin');
    const ch = track(await connect(`exec:cat > ${q(out)}`));
    expect(ch.info).toMatchObject({ transport: 'exec', readable: false, writable: true });
    expect(ch.info.peer).toMatch(/^pid \d+ \(sh -c cat > /);
    const src = patternBytes(4 << 20, 8);
    await ch.write(src);
    await ch.end();
    expect(sha256([readFileSync(out)])).toBe(sha256([src]));
    expect(await ch.closed).toEqual({ reason: 'ended' });
    expect((await rejectionOf(ch.read())).code).toBe('E_ONE_WAY');
  });

  it('end() reports a non-zero exit status with the stderr tail', async () => {
    const ch = track(await connect('exec:cat > /dev/null; echo "disk quota exceeded" >&2; exit 5'));
    await ch.write(patternBytes(100_000, 1));
    const e = await rejectionOf(ch.end());
    expect(e.code).toBe('E_EXEC');
    expect(e.exitCode).toBe(5);
    expect(e.signal).toBeNull();
    expect(e.stderrTail).toBe('disk quota exceeded');
    expect(e.message).toMatch(/exited with status 5; stderr: disk quota exceeded/);
    expect((await ch.closed).reason).toBe('error');
  });

  it('a command that fails without reading fails the writer with E_EXEC', async () => {
    const ch = track(await connect('exec:echo "no such host" >&2; exit 7'));
    const writes = (async () => {
      const b = patternBytes(1 << 20, 2);
      for (;;) await ch.write(b);
    })();
    const e = await rejectionOf(writes);
    expect(e.code).toBe('E_EXEC');
    expect(e.exitCode).toBe(7);
    expect(e.stderrTail).toBe('no such host');
  });

  it('a command that exits 0 without reading everything is an error too', async () => {
    const ch = track(await connect('exec:head -c 10 > /dev/null'));
    const writes = (async () => {
      const b = patternBytes(1 << 20, 3);
      for (let i = 0; i < 64; i++) await ch.write(b);
      await ch.end();
    })();
    const e = await rejectionOf(writes);
    expect(e.code).toBe('E_EXEC');
    expect(e.exitCode).toBe(0);
    expect(e.message).toMatch(/before taking the whole stream/);
  });

  it('passes stderr to onStderr as it arrives', async () => {
    const seen: string[] = [];
    const ch = track(
      await connect('exec:cat >/dev/null; echo progress >&2', {
        onStderr: (c) => seen.push(Buffer.from(c).toString()),
      }),
    );
    await ch.end();
    expect(seen.join('')).toBe('progress\n');
  });
});

describe('exec: incoming (stream from the command stdout)', () => {
  it('reads the command output, then EOF; a second accept is refused', async () => {
    const file = join(tmp(), 'in.bin');
    const src = patternBytes(3 << 20, 9);
    writeFileSync(file, src);
    const l = await listen(`exec:cat ${q(file)}`);
    cleanups.push(() => l.close());
    const ch = track(await l.accept());
    expect(ch.info).toMatchObject({ transport: 'exec', readable: true, writable: false });
    expect(sha256(await readAll(ch))).toBe(sha256([src]));
    const e = await rejectionOf(l.accept());
    expect(e.code).toBe('E_CLOSED');
    expect(e.message).toMatch(/single channel .* need tcp: or unix:/);
    expect((await rejectionOf(ch.write(Uint8Array.of(1)))).code).toBe('E_ONE_WAY');
  });

  it('delivers the output, then fails with the exit status where the stream stopped', async () => {
    const l = await listen('exec:printf abc; echo "gunzip: corrupt input" >&2; exit 3');
    cleanups.push(() => l.close());
    const ch = track(await l.accept());
    expect(Buffer.from(await ch.readExactly(3)).toString()).toBe('abc');
    const e = await rejectionOf(ch.readExactly(4));
    expect(e.code).toBe('E_EXEC');
    expect(e.exitCode).toBe(3);
    expect(e.stderrTail).toBe('gunzip: corrupt input');
    expect(e.offset).toBe(3);
  });

  it('reports a command killed by a signal', async () => {
    const l = await listen('exec:printf x; kill -KILL $$');
    cleanups.push(() => l.close());
    const ch = track(await l.accept());
    await ch.readExactly(1);
    const e = await rejectionOf(ch.read());
    expect(e.code).toBe('E_EXEC');
    expect(e.signal).toBe('SIGKILL');
    expect(e.exitCode).toBeNull();
  });

  it('cancel kills the whole process group promptly', async () => {
    const pidFile = join(tmp(), 'pid');
    const l = await listen(`exec:sh -c 'echo $$ > ${pidFile}; exec sleep 30' ; echo never`);
    cleanups.push(() => l.close());
    const ch = track(await l.accept());
    const pending = rejectionOf(ch.read());
    let pid = 0;
    for (let i = 0; i < 100 && !pid; i++) {
      await sleep(20);
      try {
        pid = Number(readFileSync(pidFile, 'utf8').trim());
      } catch {}
    }
    expect(pid).toBeGreaterThan(0);
    ch.cancel('migrate_cancel');
    expect((await pending).code).toBe('E_CANCELLED');
    expect((await ch.closed).reason).toBe('cancelled');
    // dead = gone or a zombie waiting for its reaper (the grandchild is reparented)
    const alive = (): boolean => {
      try {
        return !/^State:\s+Z/m.test(readFileSync(`/proc/${pid}/status`, 'utf8'));
      } catch {
        return false;
      }
    };
    for (let i = 0; i < 100 && alive(); i++) await sleep(20);
    expect(alive()).toBe(false);
  });
});
