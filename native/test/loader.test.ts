import { execFileSync } from 'node:child_process';
import { copyFileSync, cpSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { needs } from '@e2k-migrate/test-support';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ADDON_PATH, backendInfo } from '../src/loader.js';
import { NATIVE_ROOT, requireBuiltDist } from './support.js';

/**
 * Backend selection, in child processes over a copy of the built package: a missing addon means
 * the fallback (unless E2K_NATIVE=1, which fails naming the reason), a broken binary is an error,
 * E2K_NATIVE=0 forces the fallback.
 */
let dir = '';

function pkg(binary: 'none' | 'broken' | 'real'): string {
  const root = join(dir, binary);
  mkdirSync(root, { recursive: true });
  cpSync(join(NATIVE_ROOT, 'dist'), join(root, 'dist'), { recursive: true });
  writeFileSync(join(root, 'package.json'), JSON.stringify({ name: 'loader-copy', type: 'module' }));
  if (binary !== 'none') {
    mkdirSync(join(root, 'build', 'Release'), { recursive: true });
    const target = join(root, 'build', 'Release', 'e2k_native.node');
    if (binary === 'broken') writeFileSync(target, 'not an ELF file');
    else copyFileSync(ADDON_PATH, target);
  }
  return root;
}

function select(
  root: string,
  env: string | undefined,
): { name?: string; reason?: string; code?: string; message?: string } {
  const script = `import(${JSON.stringify(join(root, 'dist', 'index.js'))}).then((m) => {
    try { const i = m.backendInfo(); console.log(JSON.stringify({ name: i.name, reason: i.reason })); }
    catch (e) { console.log(JSON.stringify({ code: e.code, message: e.message })); }
  });`;
  const childEnv = { ...process.env };
  if (env === undefined) delete childEnv.E2K_NATIVE;
  else childEnv.E2K_NATIVE = env;
  return JSON.parse(execFileSync(process.execPath, ['-e', script], { env: childEnv, encoding: 'utf8' }));
}

beforeAll(() => {
  requireBuiltDist();
  dir = mkdtempSync(join(tmpdir(), 'e2k-loader-'));
});
afterAll(() => rmSync(dir, { recursive: true, force: true }));

describe('backend selection (E2K_NATIVE)', () => {
  it('falls back when the addon is not built, and says why', () => {
    const r = select(pkg('none'), undefined);
    expect(r.name).toBe('fallback');
    expect(r.reason).toContain('addon not built');
  });

  it('E2K_NATIVE=1 fails loudly when the addon is missing', () => {
    const r = select(pkg('none'), '1');
    expect(r.code).toBe('E_NATIVE_UNAVAILABLE');
    expect(r.message).toContain('addon not built');
  });

  it('a broken binary is an error, not a fallback', () => {
    const r = select(pkg('broken'), 'auto');
    expect(r.code).toBe('E_NATIVE_LOAD');
    expect(r.message).toContain('e2k_native.node');
  });

  it('E2K_NATIVE=0 forces the fallback even with a broken binary', () => {
    expect(select(pkg('broken'), '0')).toEqual({ name: 'fallback', reason: 'forced by E2K_NATIVE=0' });
  });

  it('rejects an unknown E2K_NATIVE value', () => {
    expect(select(pkg('none'), 'yes').code).toBe('E_NATIVE_LOAD');
  });

  const nativeOk = needs('native', backendInfo().name === 'native', backendInfo().reason);
  it.runIf(nativeOk)('loads a working binary (auto and E2K_NATIVE=1)', () => {
    const root = pkg('real');
    expect(select(root, undefined).name).toBe('native');
    expect(select(root, '1').name).toBe('native');
  });
});
