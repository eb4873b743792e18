/**
 * The physical reference of the precopy benchmark: moving the same number of bytes from one
 * process's memory to another over loopback TCP with the same transport (`Channel`, 1 MiB
 * writes from distinct, pre-faulted memory; the receiver reads and drops). Run as a child:
 * `node raw-tcp.js recv` prints `PORT n` then, at the end, `BYTES n MS t`;
 * `node raw-tcp.js send URI BYTES` sends.
 */
import { fork } from 'node:child_process';
import { randomFillSync } from 'node:crypto';
import { fileURLToPath } from 'node:url';
import { connect, listen } from '@e2k-migrate/transports';

const SELF = fileURLToPath(import.meta.url);
const CHUNK = 1 << 20;

async function recv(): Promise<void> {
  const l = await listen('tcp:127.0.0.1:0');
  process.stdout.write(`PORT ${l.uri.split(':').pop()}\n`);
  const ch = await l.accept();
  const t0 = performance.now();
  let n = 0;
  for await (const c of ch.chunks()) n += c.length;
  process.stdout.write(`BYTES ${n} MS ${performance.now() - t0}\n`);
  await l.close();
}

async function send(uri: string, bytes: number): Promise<void> {
  const data = Buffer.allocUnsafe(bytes);
  for (let at = 0; at < bytes; at += 1 << 16) randomFillSync(data, at, Math.min(1 << 16, bytes - at));
  const ch = await connect(uri);
  for (let at = 0; at < bytes; at += CHUNK) await ch.write(data.subarray(at, Math.min(bytes, at + CHUNK)));
  await ch.end();
}

/** Runs one raw transfer of `bytes` between two child processes; returns bytes/s. */
export async function rawLoopbackTcp(bytes: number): Promise<number> {
  const rx = fork(SELF, ['recv'], { stdio: ['ignore', 'pipe', 'inherit', 'ipc'] });
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
  const [cmd, uri, bytes] = process.argv.slice(2);
  if (cmd === 'recv') await recv();
  else if (cmd === 'send') await send(uri as string, Number(bytes));
}
