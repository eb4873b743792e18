import { type ChildProcess, spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import type { TransportError } from '../src/errors.js';

/** The committed TLS fixtures (tools/gen-test-certs.sh). */
export const TLS_FIXTURES = resolve(import.meta.dirname, '..', '..', '..', 'test', 'fixtures', 'tls');
export const tlsDir = (name: 'good' | 'rogue-client' | 'rogue-server' | 'untrusted-ca'): string =>
  join(TLS_FIXTURES, name);

/** The client certificate's subject in RFC 4514 order. */
export const CLIENT_DN = 'CN=client.example,O=e2k-migrate';

/** A fresh temporary directory and its remover. */
export function tempDir(prefix = 'e2k-transports-'): { dir: string; remove: () => void } {
  const dir = mkdtempSync(join(tmpdir(), prefix));
  return { dir, remove: () => rmSync(dir, { recursive: true, force: true }) };
}

/** Deterministic pseudo-random bytes (xorshift32), so both ends can regenerate them. */
export function patternBytes(n: number, seed: number): Uint8Array {
  const out = new Uint8Array(n);
  let x = seed >>> 0 || 1;
  for (let i = 0; i < n; i++) {
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    out[i] = x & 0xff;
  }
  return out;
}

export function sha256(parts: Iterable<Uint8Array>): string {
  const h = createHash('sha256');
  for (const p of parts) h.update(p);
  return h.digest('hex');
}

/** The rejection of `p` (fails the test when it resolves). */
export async function rejectionOf(p: Promise<unknown>): Promise<TransportError> {
  try {
    await p;
  } catch (e) {
    return e as TransportError;
  }
  throw new Error('expected the promise to reject, but it resolved');
}

export const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

/**
 * Runs a plain-JS node program as a child process; resolves once it printed its first line
 * (returned), e.g. a port number.
 */
export function nodeChild(source: string, args: string[] = []): Promise<{ child: ChildProcess; firstLine: string }> {
  const child = spawn(process.execPath, ['-e', source, ...args], { stdio: ['ignore', 'pipe', 'inherit'] });
  return new Promise((resolve, reject) => {
    let buf = '';
    child.once('error', reject);
    child.once('exit', (code) => reject(new Error(`child exited early with ${code}`)));
    child.stdout?.on('data', (d: Buffer) => {
      buf += d.toString();
      const nl = buf.indexOf('\n');
      if (nl >= 0) {
        child.removeAllListeners('exit');
        resolve({ child, firstLine: buf.slice(0, nl) });
      }
    });
  });
}

/** Kills a child and waits for it to be gone. */
export function killChild(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return Promise.resolve();
  return new Promise((resolve) => {
    child.once('exit', () => resolve());
    child.kill('SIGKILL');
  });
}
