import { describe, expect, it } from 'vitest';
import { formatQmpAddress, parseQmpAddress } from './address.js';

describe('QMP addresses', () => {
  it('parses unix, tcp (v4, v6, name) and bare paths', () => {
    expect(parseQmpAddress('unix:/tmp/q.sock')).toEqual({ kind: 'unix', path: '/tmp/q.sock' });
    expect(parseQmpAddress('unix:/tmp/q.sock,server=on,wait=off')).toEqual({ kind: 'unix', path: '/tmp/q.sock' });
    expect(parseQmpAddress('/run/vm.qmp')).toEqual({ kind: 'unix', path: '/run/vm.qmp' });
    expect(parseQmpAddress('tcp:localhost:4444')).toEqual({ kind: 'tcp', host: 'localhost', port: 4444 });
    expect(parseQmpAddress('tcp:[::1]:5')).toEqual({ kind: 'tcp', host: '::1', port: 5 });
    expect(parseQmpAddress('tcp::4444')).toEqual({ kind: 'tcp', host: '127.0.0.1', port: 4444 });
    expect(formatQmpAddress({ kind: 'tcp', host: '::1', port: 5 })).toBe('tcp:[::1]:5');
  });

  it('rejects what it cannot parse with E_QMP_ADDRESS', () => {
    for (const bad of ['tcp:host', 'tcp:h:70000', 'unix:', 'udp:1.2.3.4:5', '']) {
      expect(() => parseQmpAddress(bad)).toThrow(expect.objectContaining({ code: 'E_QMP_ADDRESS' }));
    }
  });
});
