#!/usr/bin/env node
// Builds build/Release/e2k_native.node with node-gyp against the local Node headers (never a
// download). Runs as this package's `install` script. A failed build never fails the install:
// the reason is printed and recorded in build/status.json, which `e2k-migrate doctor` shows, and
// the TypeScript fallback is used.
//
// usage: node scripts/build-addon.mjs [--force]   (--force rebuilds even if E2K_NATIVE=0)
import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join, resolve } from 'node:path';

const root = resolve(import.meta.dirname, '..');
const statusFile = join(root, 'build', 'status.json');
const force = process.argv.includes('--force');

function record(status) {
  mkdirSync(dirname(statusFile), { recursive: true });
  writeFileSync(
    statusFile,
    `${JSON.stringify({ ...status, at: new Date().toISOString(), node: process.version }, null, 2)}\n`,
  );
}

function fail(reason, detail = '') {
  record({ ok: false, reason, detail: detail.slice(-4000) });
  process.stderr.write(`@e2k-migrate/native: addon not built (${reason}); the TypeScript fallback will be used.\n`);
  if (detail) process.stderr.write(`${detail.slice(-2000)}\n`);
  process.exit(0);
}

if (process.platform !== 'linux') fail(`platform ${process.platform} is not Linux`);
if (process.env.E2K_NATIVE === '0' && !force) fail('E2K_NATIVE=0 at install time');

// The headers of the running Node: <prefix>/include/node, with prefix = dirname(dirname(execPath)).
const nodedir = dirname(dirname(process.execPath));
if (!existsSync(join(nodedir, 'include', 'node', 'node_api.h'))) {
  fail(`no Node headers at ${join(nodedir, 'include', 'node')} (install the nodejs headers package)`);
}

const require = createRequire(import.meta.url);
let gypBin;
try {
  gypBin = require.resolve('node-gyp/bin/node-gyp.js');
  require.resolve('node-addon-api');
} catch (err) {
  fail('node-gyp or node-addon-api is not installed', String(err));
}

const args = [gypBin, 'rebuild', `--nodedir=${nodedir}`, '--jobs=2', '--release'];
const res = spawnSync(process.execPath, args, {
  cwd: root,
  encoding: 'utf8',
  env: { ...process.env, npm_config_nodedir: nodedir },
});
const output = `${res.stdout ?? ''}${res.stderr ?? ''}`;
if (res.error) fail(`node-gyp could not run: ${res.error.message}`, output);
if (res.status !== 0) fail(`node-gyp exited with status ${res.status}`, output);
const binary = join(root, 'build', 'Release', 'e2k_native.node');
if (!existsSync(binary)) fail('node-gyp succeeded but build/Release/e2k_native.node is missing', output);
record({ ok: true, reason: 'built', binary, nodedir });
process.stderr.write(`@e2k-migrate/native: built ${binary}\n`);
