/**
 * The physical reference of the precopy benchmark: moving the same number of bytes from one
 * process's memory to another over loopback TCP with the same transport (`Channel`, 1 MiB
 * writes from distinct, pre-faulted memory; the receiver reads and drops). The `copy` sink is the
 * destination's floor: the receiver only copies the received bytes, in order, into a fresh
 * (never touched) native guest-memory region of that size — memcpy plus the kernel's first-touch
 * page faults, none of the migration stream's work. Run as a child:
 * `node raw-tcp.js recv [drop|copy] BYTES` prints `PORT n` then, at the end, `BYTES n MS t`;
 * `node raw-tcp.js send URI BYTES` sends.
 */
import { fork } from 'node:child_process';
import { randomFillSync } from 'node:crypto';
import { fileURLToPath } from 'node:url';
import { createGuestMemoryWith } from '@e2k-migrate/native';
import { connect, listen } from '@e2k-migrate/transports';

const SELF = fileURLToPath(import.meta.url);
const CHUNK = 1 << 20;

/** What the receiver does with the bytes: drop them, or copy them into fresh guest memory. */
export type RawSink = 'drop' | 'copy';

async function recv(sink: RawSink, bytes: number): Promise<void> {
  const mem = sink === 'copy' ? createGuestMemoryWith('native', { size: Math.ceil(bytes / 4096) * 4096 }) : undefined;
  const views = mem?.views() ?? [];
  const viewBytes = mem?.handle.viewBytes ?? 1;
  const l = await listen('tcp:127.0.0.1:0');
  process.stdout.write(`PORT ${l.uri.split(':').pop()}\n`);
  const ch = await l.accept();
  const t0 = performance.now();
  let n = 0;
  for await (const c of ch.chunks()) {
    if (mem) {
      for (let at = 0; at < c.length && n + at < mem.size; ) {
        const pos = n + at;
        const view = views[Math.floor(pos / viewBytes)] as Uint8Array;
        const off = pos % viewBytes;
        const len = Math.min(c.length - at, view.length - off);
        view.set(c.subarray(at, at + len), off);
        at += len;
      }
    }
    n += c.length;
  }
  process.stdout.write(`BYTES ${n} MS ${performance.now() - t0}\n`);
  await l.close();
  mem?.close();
}

async function send(uri: string, bytes: number): Promise<void> {
  const data = Buffer.allocUnsafe(bytes);
  for (let at = 0; at < bytes; at += 1 << 16) randomFillSync(data, at, Math.min(1 << 16, bytes - at));
  const ch = await connect(uri);
  for (let at = 0; at < bytes; at += CHUNK) await ch.write(data.subarray(at, Math.min(bytes, at + CHUNK)));
  await ch.end();
}

/** Runs one raw transfer of `bytes` between two child processes; returns bytes/s. */
export async function rawLoopbackTcp(bytes: number, sink: RawSink = 'drop'): Promise<number> {
  const rx = fork(SELF, ['recv', sink, String(bytes)], { stdio: ['ignore', 'pipe', 'inherit', 'ipc'] });
  let out = '';
  const port = await new Promise<string>((resolve, reject) => {
    rx.stdout?.on('data', (d: Buffer) => {
      out += d.toString();
      const m = /PORT (\d+)/.exec(out);
      if (m) resolve(m[1] as string);
    });
    rx.on('exit', (code) => reject(new Error(`raw receiver exited (${code})`)));
  });
  const tx = fork(SELF, ['send', `tcp:127.0.0.1:${port}`, String(bytes)], { stdio: 'inherit' });
  const [result] = await Promise.all([
    new Promise<number>((resolve, reject) => {
      rx.on('exit', () => {
        const m = /BYTES (\d+) MS ([\d.]+)/.exec(out);
        if (!m) return reject(new Error(`raw receiver printed no result: ${out}`));
        resolve(Number(m[1]) / (Number(m[2]) / 1000));
      });
    }),
    new Promise<void>((resolve) => tx.on('exit', () => resolve())),
  ]);
  return result;
}

if (process.argv[1] === SELF) {
  const [cmd, a, bytes] = process.argv.slice(2);
  if (cmd === 'recv') await recv(a === 'copy' ? 'copy' : 'drop', Number(bytes));
  else if (cmd === 'send') await send(a as string, Number(bytes));
}
