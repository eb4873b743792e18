import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { isTransportError } from './errors.js';
import { formatUri } from './format-uri.js';
import { parseUri } from './parse-uri.js';
import type { MigrationUri } from './uri.js';

describe('parseUri', () => {
  it.each<[string, MigrationUri]>([
    ['tcp:localhost:4444', { transport: 'tcp', host: 'localhost', port: 4444 }],
    ['tcp:127.0.0.1:0', { transport: 'tcp', host: '127.0.0.1', port: 0 }],
    ['tcp:[::1]:65535', { transport: 'tcp', host: '::1', port: 65535 }],
    ['tcp:[fe80::1%eth0]:80', { transport: 'tcp', host: 'fe80::1%eth0', port: 80 }],
    ['tcp::4444', { transport: 'tcp', host: '', port: 4444 }],
    ['unix:/tmp/mig.sock', { transport: 'unix', path: '/tmp/mig.sock' }],
    ['unix:relative/sock', { transport: 'unix', path: 'relative/sock' }],
    ['fd:0', { transport: 'fd', fd: 0 }],
    ['fd:17', { transport: 'fd', fd: 17 }],
    ['exec:cat > /tmp/x', { transport: 'exec', command: 'cat > /tmp/x' }],
    ['exec:gzip -c | ssh host "cat > f:1"', { transport: 'exec', command: 'gzip -c | ssh host "cat > f:1"' }],
    ['file:/tmp/vm.state', { transport: 'file', path: '/tmp/vm.state', offset: 0 }],
    ['file:/tmp/vm.state,offset=4096', { transport: 'file', path: '/tmp/vm.state', offset: 4096 }],
    ['file:/tmp/a,b,offset=0x1000', { transport: 'file', path: '/tmp/a,b', offset: 4096 }],
    ['file:/x,offset=4K', { transport: 'file', path: '/x', offset: 4096 }],
    ['file:/x,offset=2m', { transport: 'file', path: '/x', offset: 2 * 1024 * 1024 }],
  ])('%s', (text, expected) => {
    expect(parseUri(text)).toEqual(expected);
    expect(parseUri(formatUri(expected))).toEqual(expected);
  });

  it.each<[string, RegExp]>([
    ['', /the URI is empty/],
    ['localhost:4444', /unknown transport "localhost:"/],
    ['/tmp/sock', /missing transport prefix/],
    ['http://x', /unknown transport "http:"/],
    ['rdma:host:4444', /"rdma:" is not supported/],
    ['vsock:3:4444', /"vsock:" is not supported/],
    ['tcp:localhost', /missing ":PORT" after host "localhost"/],
    ['tcp:localhost:', /missing port number after "localhost:"/],
    ['tcp:localhost:http', /port "http" is not a number from 0 to 65535/],
    ['tcp:localhost:65536', /port "65536" is not a number/],
    ['tcp:localhost:-1', /port "-1" is not a number/],
    ['tcp:::1:4444', /IPv6 address must be written in brackets/],
    ['tcp:[::1:4444', /missing its closing "\]"/],
    ['tcp:[::1]4444', /expected ":PORT" after "\[::1\]"/],
    ['tcp:[host]:1', /"\[host\]" is not an IPv6 address/],
    ['tcp:h:1,ipv4', /options \(",ipv4"\) are not supported/],
    ['unix:', /unix: needs a socket path/],
    [`unix:/${'x'.repeat(120)}`, /121 bytes long; the limit is 107/],
    ['fd:', /fd: needs a descriptor number/],
    ['fd:migfd', /"migfd" is not a descriptor number/],
    ['fd:-3', /"-3" is not a descriptor number/],
    ['fd:99999999999', /out of range/],
    ['exec:', /exec: needs a command/],
    ['exec:   ', /exec: needs a command/],
    ['file:', /file: needs a path/],
    ['file:,offset=10', /file: needs a path/],
    ['file:/x,offset=', /offset "" is not a byte count/],
    ['file:/x,offset=-5', /offset "-5" is not a byte count/],
    ['file:/x,offset=12q', /offset "12q" is not a byte count/],
    ['file:/x,offset=99999999999P', /larger than 2\^53-1/],
  ])('rejects %j', (text, why) => {
    let err: unknown;
    try {
      parseUri(text);
    } catch (e) {
      err = e;
    }
    expect(isTransportError(err, 'E_BAD_URI')).toBe(true);
    const e = err as Error & { uri?: string };
    expect(e.message).toMatch(why);
    expect(e.message).toContain(
      'accepted forms: tcp:HOST:PORT, tcp:[IPV6]:PORT, unix:PATH, fd:N, exec:CMD, file:PATH[,offset=N]',
    );
    expect(e.uri).toBe(text);
  });

  it('round-trips every URI it formats', () => {
    const host = fc.oneof(
      fc.constantFrom('localhost', '127.0.0.1', '::1', 'fe80::1', 'example.org', ''),
      fc.stringMatching(/^[a-z][a-z0-9.-]{0,20}$/),
    );
    const path = fc.string({ minLength: 1, maxLength: 60 }).filter((p) => !p.includes('\0') && !p.includes(',offset='));
    const uri: fc.Arbitrary<MigrationUri> = fc.oneof(
      fc.record({ transport: fc.constant('tcp' as const), host, port: fc.integer({ min: 0, max: 65535 }) }),
      fc.record({ transport: fc.constant('unix' as const), path: path.filter((p) => Buffer.byteLength(p) <= 107) }),
      fc.record({ transport: fc.constant('fd' as const), fd: fc.integer({ min: 0, max: 1 << 20 }) }),
      fc.record({
        transport: fc.constant('exec' as const),
        command: fc.string({ minLength: 1 }).filter((c) => c.trim() !== ''),
      }),
      fc.record({ transport: fc.constant('file' as const), path, offset: fc.maxSafeNat() }),
    );
    fc.assert(
      fc.property(uri, (u) => {
        expect(parseUri(formatUri(u))).toEqual(u);
      }),
    );
  });
});
