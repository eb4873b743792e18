import { type ChildProcess, spawn } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { connect as netConnect, type Socket } from 'node:net';
import { resolve } from 'node:path';
import { connect as tlsConnect } from 'node:tls';
import { connect, loadTlsCredsX509, type TlsSettings } from '@e2k-migrate/transports';
import { type Bench, type BenchOptions, median } from './bench.js';

const TLS_DIR = resolve(import.meta.dirname, '..', '..', '..', 'test', 'fixtures', 'tls', 'good');
const WRITE = 1 << 20;

/**
 * Peer processes in plain JS (the other end of each measurement, identical for the raw and the
 * Channel runs): a sink that counts N bytes and answers one byte, and a source that sends N bytes.
 */
const SINK = `
const [n, tlsDir] = [Number(process.argv[1]), process.argv[2]];
const onConn = (s) => { let got = 0; s.on('data', (d) => { got += d.length; if (got >= n) { s.end('k'); } }); s.on('error', () => {}); };
let srv;
if (tlsDir) {
  const fs = require('fs'), p = (f) => fs.readFileSync(tlsDir + '/' + f);
  srv = require('tls').createServer({ ca: p('ca-cert.pem'), cert: p('server-cert.pem'), key: p('server-key.pem'), requestCert: true, rejectUnauthorized: true }, onConn);
} else srv = require('net').createServer(onConn);
srv.listen(0, '127.0.0.1', () => console.log(srv.address().port));
`;
const SOURCE = `
const n = Number(process.argv[1]);
const b = Buffer.alloc(${WRITE}, 0x5a);
const srv = require('net').createServer((s) => {
  let sent = 0; s.on('error', () => {});
  const go = () => { while (sent < n) { sent += b.length; if (!s.write(b)) return; } s.end(); };
  s.on('drain', go); go();
});
srv.listen(0, '127.0.0.1', () => console.log(srv.address().port));
`;

async function peer(source: string, args: string[]): Promise<{ child: ChildProcess; port: number }> {
  const child = spawn(process.execPath, ['-e', source, ...args], { stdio: ['ignore', 'pipe', 'inherit'] });
  const port = await new Promise<number>((res, rej) => {
    child.once('exit', (c) => rej(new Error(`bench peer exited with ${c}`)));
    child.stdout?.once('data', (d: Buffer) => res(Number(d.toString().trim())));
  });
  child.removeAllListeners('exit');
  return { child, port };
}

function waitAck(sock: Socket): Promise<void> {
  return new Promise((res, rej) => {
    sock.once('data', () => res());
    sock.once('error', rej);
  });
}

/** node:net (or node:tls) writes with 'drain' backpressure: the reference. */
async function sendRaw(port: number, n: number, tls: boolean): Promise<void> {
  const buf = Buffer.alloc(WRITE, 0x5a);
  const s: Socket = tls ? tlsConnect({ port, host: '127.0.0.1', ...rawTlsOptions() }) : netConnect(port, '127.0.0.1');
  await new Promise((r) => s.once(tls ? 'secureConnect' : 'connect', r));
  s.setNoDelay(true);
  const ack = waitAck(s);
  for (let sent = 0; sent < n; sent += WRITE) {
    if (!s.write(buf)) await new Promise((r) => s.once('drain', r));
  }
  await ack;
  s.destroy();
}

async function sendChannel(port: number, n: number, tls: TlsSettings | null): Promise<void> {
  const buf = new Uint8Array(WRITE).fill(0x5a);
  const ch = await connect(`tcp:127.0.0.1:${port}`, { tls });
  for (let sent = 0; sent < n; sent += WRITE) await ch.write(buf);
  await ch.flush();
  await ch.readExactly(1);
  ch.cancel();
}

async function receiveRaw(port: number, n: number): Promise<void> {
  const s = netConnect(port, '127.0.0.1');
  let got = 0;
  await new Promise<void>((res, rej) => {
    s.on('data', (d: Buffer) => {
      got += d.length;
    });
    s.once('end', () => res());
    s.once('error', rej);
  });
  s.destroy();
  if (got !== n) throw new Error(`received ${got} of ${n} bytes`);
}

async function receiveChannel(port: number, n: number): Promise<void> {
  const ch = await connect(`tcp:127.0.0.1:${port}`);
  let got = 0;
  for await (const c of ch) got += c.byteLength;
  ch.cancel();
  if (got !== n) throw new Error(`received ${got} of ${n} bytes`);
}

function rawTlsOptions() {
  const p = (f: string): Buffer => readFileSync(resolve(TLS_DIR, f));
  return { ca: p('ca-cert.pem'), cert: p('client-cert.pem'), key: p('client-key.pem'), servername: 'localhost' };
}

interface Sample {
  gbps: number;
  /** CPU seconds (user + system) this process spent per GiB moved. */
  cpuPerGiB: number;
}

async function sample(n: number, run: () => Promise<void>): Promise<Sample> {
  const cpu0 = process.cpuUsage();
  const t0 = process.hrtime.bigint();
  await run();
  const secs = Number(process.hrtime.bigint() - t0) / 1e9;
  const cpu = process.cpuUsage(cpu0);
  return { gbps: n / secs / 1e9, cpuPerGiB: ((cpu.user + cpu.system) / 1e6) * (2 ** 30 / n) };
}

interface Pair {
  raw: Sample;
  channel: Sample;
  /** Median over the runs of channel GB/s ÷ raw GB/s of the same round. */
  ratio: number;
}

/**
 * Runs the raw and the Channel variant alternately against one peer process (raw, channel,
 * raw, channel …) so that the noise of this shared machine hits both alike; reports medians.
 */
async function measurePair(
  opts: BenchOptions,
  label: string,
  peerSource: string,
  peerArgs: string[],
  n: number,
  reps: number,
  raw: (port: number) => Promise<void>,
  channel: (port: number) => Promise<void>,
): Promise<Pair> {
  const { child, port } = await peer(peerSource, peerArgs);
  try {
    await raw(port); // warm-up
    await channel(port);
    const r: Sample[] = [];
    const c: Sample[] = [];
    const ratios: number[] = [];
    for (let i = 0; i < reps; i++) {
      const a = await sample(n, () => raw(port));
      const b = await sample(n, () => channel(port));
      r.push(a);
      c.push(b);
      ratios.push(b.gbps / a.gbps);
    }
    const med = (xs: Sample[]): Sample => ({
      gbps: median(xs.map((x) => x.gbps)),
      cpuPerGiB: median(xs.map((x) => x.cpuPerGiB)),
    });
    const pair = { raw: med(r), channel: med(c), ratio: median(ratios) };
    opts.log(
      `${label}: node ${pair.raw.gbps.toFixed(2)} GB/s, Channel ${pair.channel.gbps.toFixed(2)} GB/s, ratio ${pair.ratio.toFixed(2)} (runs: ${ratios.map((x) => x.toFixed(2)).join(' ')})`,
    );
    return pair;
  } finally {
    child.kill('SIGKILL');
  }
}

export const transportsBench: Bench = {
  name: 'transports',
  summary: 'loopback TCP/TLS throughput: node:net vs the transports Channel (1 GiB in 1 MiB writes)',
  async run(opts) {
    const n = (opts.quick ? 256 : 1024) << 20;
    const tlsN = (opts.quick ? 64 : 256) << 20;
    const reps = opts.quick ? 3 : 7;
    const tls: TlsSettings = { creds: await loadTlsCredsX509(TLS_DIR, 'client'), hostname: 'localhost' };
    const args = [String(n)];
    const tlsArgs = [String(tlsN), TLS_DIR];
    const rows: Array<[string, string, Pair]> = [
      [
        'send (`await write`, 1 MiB)',
        `${n >> 20} MiB`,
        await measurePair(
          opts,
          'send',
          SINK,
          args,
          n,
          reps,
          (p) => sendRaw(p, n, false),
          (p) => sendChannel(p, n, null),
        ),
      ],
      [
        'receive (`for await` chunks)',
        `${n >> 20} MiB`,
        await measurePair(
          opts,
          'receive',
          SOURCE,
          args,
          n,
          reps,
          (p) => receiveRaw(p, n),
          (p) => receiveChannel(p, n),
        ),
      ],
      [
        'send over TLS 1.3 (x509 both ways)',
        `${tlsN >> 20} MiB`,
        await measurePair(
          opts,
          'send TLS',
          SINK,
          tlsArgs,
          tlsN,
          reps,
          (p) => sendRaw(p, tlsN, true),
          (p) => sendChannel(p, tlsN, tls),
        ),
      ],
    ];
    const table = rows
      .map(
        ([what, size, p]) =>
          `| ${what} | ${size} | ${p.raw.gbps.toFixed(2)} | ${p.channel.gbps.toFixed(2)} | **${p.ratio.toFixed(2)}** | ${p.raw.cpuPerGiB.toFixed(3)} | ${p.channel.cpuPerGiB.toFixed(3)} |`,
      )
      .join('\n');
    return [
      'Loopback TCP. The peer is a separate plain node:net (or node:tls) process, the same for both columns; this',
      'process either uses node:net directly (`write` + `drain`, the physical reference) or a transports `Channel`',
      '(`connect`, `await write` of 1 MiB buffers, default 4 MiB high-water mark; `for await` on receive).',
      `The two variants run alternately, ${reps} rounds after a warm-up; GB/s are medians, the ratio is the median of`,
      "the per-round ratios, CPU is this process's user+system seconds per GiB. Goal: Channel ≥ 0.9 × node:net on plain TCP.",
      '',
      '| direction | bytes | node GB/s | Channel GB/s | Channel / node | node CPU s/GiB | Channel CPU s/GiB |',
      '|---|---|---|---|---|---|---|',
      table,
    ].join('\n');
  },
};
