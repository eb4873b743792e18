import { mkdtempSync, rmSync } from 'node:fs';
import { createConnection, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { QmpClient } from './client.js';
import { CommandRegistry } from './commands.js';
import { QmpCommandError, QmpError, QmpFailure } from './errors.js';
import { JsonSplitter } from './json-splitter.js';
import { QmpServer } from './server.js';

let dir: string;
let server: QmpServer;
let path: string;

beforeEach(async () => {
  dir = mkdtempSync(join(tmpdir(), 'qmp-test-'));
  path = join(dir, 'qmp.sock');
  const commands = new CommandRegistry()
    .register('echo', { args: ['v'], required: ['v'], handler: (a) => ({ v: a.v ?? null }) })
    .register('fail', () => {
      throw new QmpFailure('it broke', 'DeviceNotFound');
    })
    .register('slow', async () => {
      await new Promise((r) => setTimeout(r, 30));
      return 'slow';
    })
    .register('fast', () => 'fast');
  server = new QmpServer({ commands });
  await server.listen(`unix:${path}`);
});

afterEach(async () => {
  await server.close();
  rmSync(dir, { recursive: true, force: true });
});

/** A raw connection that collects parsed server messages. */
async function raw(
  where = path,
): Promise<{ socket: Socket; next: () => Promise<Record<string, unknown>>; send: (s: string) => void }> {
  const socket = createConnection(where);
  const splitter = new JsonSplitter();
  const queue: Record<string, unknown>[] = [];
  const waiters: ((v: Record<string, unknown>) => void)[] = [];
  socket.on('data', (c) => {
    for (const r of splitter.push(c)) {
      const v = (r.ok ? r.value : { parseError: r.error }) as Record<string, unknown>;
      const w = waiters.shift();
      if (w) w(v);
      else queue.push(v);
    }
  });
  await new Promise((r) => socket.once('connect', r));
  return {
    socket,
    send: (s) => socket.write(s),
    next: () =>
      queue.length ? Promise.resolve(queue.shift() as Record<string, unknown>) : new Promise((r) => waiters.push(r)),
  };
}

describe('QMP server', () => {
  it('greets, insists on negotiation, then dispatches with ids echoed', async () => {
    const c = await raw();
    expect(await c.next()).toEqual({
      QMP: { version: { qemu: { major: 7, minor: 2, micro: 0 }, package: 'e2k-migrate 0.1.0' }, capabilities: [] },
    });
    c.send('{"execute": "query-version", "id": "x1"}');
    expect(await c.next()).toEqual({
      error: { class: 'CommandNotFound', desc: "Expecting capabilities negotiation with 'qmp_capabilities'" },
      id: 'x1',
    });
    c.send('{"execute": "qmp_capabilities", "arguments": {"enable": ["oob"]}}');
    expect(await c.next()).toEqual({ error: { class: 'GenericError', desc: "Capability 'oob' not available" } });
    c.send('{"execute": "qmp_capabilities"}');
    expect(await c.next()).toEqual({ return: {} });
    c.send('{"execute": "qmp_capabilities", "id": 7}');
    expect(await c.next()).toEqual({
      error: { class: 'CommandNotFound', desc: 'Capabilities negotiation is already complete, command ignored' },
      id: 7,
    });
    c.send('{"execute": "echo", "arguments": {"v": [1, "two"]}, "id": {"n": 3}}');
    expect(await c.next()).toEqual({ return: { v: [1, 'two'] }, id: { n: 3 } });
    c.socket.destroy();
  });

  it('answers malformed input the way QEMU does', async () => {
    const c = await raw();
    await c.next();
    c.send('{"execute": "qmp_capabilities"}');
    await c.next();
    const cases: [string, string][] = [
      ['[1, 2]', 'QMP input must be a JSON object'],
      ['{"arguments": {}}', "QMP input lacks member 'execute'"],
      ['{"execute": 5}', "QMP input member 'execute' must be a string"],
      ['{"execute": "echo", "arguments": [1]}', "QMP input member 'arguments' must be an object"],
      ['{"execute": "echo", "colour": "red"}', "QMP input member 'colour' is unexpected"],
      ['{"execute": "nope"}', 'The command nope has not been found'],
      ['{"execute": "echo", "arguments": {}}', "Parameter 'v' is missing"],
      ['{"execute": "echo", "arguments": {"v": 1, "w": 2}}', "Parameter 'w' is unexpected"],
    ];
    for (const [input, desc] of cases) {
      c.send(input);
      expect(((await c.next()).error as { desc: string }).desc).toBe(desc);
    }
    c.send('{"execute": "fail"}');
    expect(await c.next()).toEqual({ error: { class: 'DeviceNotFound', desc: 'it broke' } });
    c.send('{"execute": bogus}');
    expect(((await c.next()).error as { desc: string }).desc).toMatch(/^JSON parse error/);
    // the session survives all of it
    c.send('{"execute": "echo", "arguments": {"v": true}}');
    expect(await c.next()).toEqual({ return: { v: true } });
    c.socket.destroy();
  });

  it("runs one session's commands in order and delivers events only after negotiation", async () => {
    const c = await raw();
    await c.next();
    server.emit('EARLY');
    c.send('{"execute": "qmp_capabilities"}{"execute": "slow", "id": 1}{"execute": "fast", "id": 2}');
    expect(await c.next()).toEqual({ return: {} });
    expect(await c.next()).toEqual({ return: 'slow', id: 1 });
    expect(await c.next()).toEqual({ return: 'fast', id: 2 });
    server.emit('STOP');
    server.emit('MIGRATION', { status: 'active' });
    const stop = await c.next();
    expect(stop.event).toBe('STOP');
    expect(Object.keys(stop)).toEqual(['timestamp', 'event']);
    const ts = stop.timestamp as { seconds: number; microseconds: number };
    expect(Math.abs(ts.seconds - Date.now() / 1000)).toBeLessThan(60);
    expect(ts.microseconds).toBeGreaterThanOrEqual(0);
    expect(ts.microseconds).toBeLessThan(1_000_000);
    expect(await c.next()).toMatchObject({ event: 'MIGRATION', data: { status: 'active' } });
    c.socket.destroy();
  });

  it('serves tcp too, with the bound port reported', async () => {
    const addr = await server.listen('tcp:127.0.0.1:0');
    expect(addr.kind === 'tcp' && addr.port > 0).toBe(true);
    const client = await QmpClient.connect(addr);
    expect(await client.execute('echo', { v: 'tcp' })).toEqual({ v: 'tcp' });
    await client.close();
  });
});

describe('QMP client', () => {
  it('negotiates, executes, maps errors to QmpCommandError and collects events', async () => {
    const client = await QmpClient.connect(`unix:${path}`);
    expect(client.greeting.QMP.capabilities).toEqual([]);
    expect(await client.execute('query-version')).toMatchObject({ qemu: { major: 7, minor: 2 } });
    const names = (await client.execute('query-commands')) as { name: string }[];
    expect(names.map((n) => n.name)).toEqual(expect.arrayContaining(['qmp_capabilities', 'echo', 'query-version']));
    const err = await client.execute('fail').catch((e: unknown) => e);
    expect(err).toBeInstanceOf(QmpCommandError);
    expect(err).toMatchObject({
      code: 'E_QMP_COMMAND',
      errorClass: 'DeviceNotFound',
      desc: 'it broke',
      command: 'fail',
    });
    const waiting = client.waitEvent('RESUME', { timeoutMs: 2000 });
    server.emit('RESUME');
    expect((await waiting).event).toBe('RESUME');
    await expect(client.waitEvent('NEVER', { timeoutMs: 50 })).rejects.toMatchObject({ code: 'E_QMP_TIMEOUT' });
    await client.close();
  });

  it('rejects pending commands when the server goes away, and fails to connect cleanly', async () => {
    const client = await QmpClient.connect(`unix:${path}`);
    const pending = client.execute('slow');
    await server.close();
    await expect(pending).rejects.toMatchObject({ code: 'E_QMP_CLOSED' });
    await expect(client.execute('fast')).rejects.toBeInstanceOf(QmpError);
    await expect(QmpClient.connect(`unix:${join(dir, 'none.sock')}`, { timeoutMs: 500 })).rejects.toMatchObject({
      code: 'E_QMP_CLOSED',
    });
  });
});
