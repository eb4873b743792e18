import { ByteReader } from '@e2k-migrate/vmstate';
import { describe, expect, it } from 'vitest';
import { catchStreamError } from '../test-util/catch.js';
import { hex } from '../test-util/hex.js';
import { decodeVmdescTrailerBody, encodeVmdescTrailer, findVmdescTrailer, parseVmdesc } from './vmdesc-trailer.js';

describe('vmdesc trailer', () => {
  const json = new TextEncoder().encode(
    '{"page_size": 4096, "devices": [{"name": "timer", "instance_id": 0, "fields": []}]}',
  );

  it('encodes `06, be32 len, JSON` and decodes it', () => {
    const b = encodeVmdescTrailer(json).written();
    expect(b.subarray(0, 5)).toEqual(hex(`06 ${json.length.toString(16).padStart(8, '0')}`));
    expect(decodeVmdescTrailerBody(new ByteReader(b, 0, 1))).toEqual(json);
  });

  it('finds the trailer that ends exactly at the end of the data, after EOF', () => {
    const tail = new Uint8Array([0x7e, 0, 0, 0, 4, 0x00, ...encodeVmdescTrailer(json).written()]);
    expect(findVmdescTrailer(tail)).toEqual({ index: 6, jsonStart: 11, jsonLength: json.length });
    expect(findVmdescTrailer(tail.subarray(0, tail.length - 1))).toBeUndefined();
    const noEof = tail.slice();
    noEof[5] = 1;
    expect(findVmdescTrailer(noEof)).toBeUndefined();
  });

  it('parses the outline and rejects what is not a vmdesc', () => {
    expect(parseVmdesc(json).devices[0]?.name).toBe('timer');
    expect(catchStreamError(() => parseVmdesc(new TextEncoder().encode('{"page_size": 4096'), 77))).toMatchObject({
      code: 'E_BAD_VMDESC',
      offset: 77,
    });
    expect(
      catchStreamError(() => parseVmdesc(new TextEncoder().encode('{"page_size": 1000, "devices": []}'))).code,
    ).toBe('E_BAD_VMDESC');
    expect(
      catchStreamError(() => parseVmdesc(new TextEncoder().encode('{"page_size": 4096, "devices": [{}]}'))).code,
    ).toBe('E_BAD_VMDESC');
    expect(catchStreamError(() => parseVmdesc(new TextEncoder().encode('[]'))).code).toBe('E_BAD_VMDESC');
  });

  it('rejects a length over the limit before reading it', () => {
    expect(catchStreamError(() => decodeVmdescTrailerBody(new ByteReader(hex('7fffffff 7b'))))).toMatchObject({
      code: 'E_BAD_LENGTH',
      offset: 0,
    });
  });
});

describe('vmdesc trailer (property)', () => {
  it('any JSON text after EOF is found again and decodes to the same bytes', async () => {
    const fc = (await import('fast-check')).default;
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 64 }), fc.json(), (prefix, text) => {
        const json = new TextEncoder().encode(`{"x": ${text}}`);
        const tail = new Uint8Array([...prefix, 0x00, ...encodeVmdescTrailer(json).written()]);
        const loc = findVmdescTrailer(tail);
        expect(loc).toBeDefined();
        expect(tail.subarray(loc?.jsonStart, (loc?.jsonStart ?? 0) + (loc?.jsonLength ?? 0))).toEqual(json);
        expect(decodeVmdescTrailerBody(new ByteReader(tail, 0, (loc?.index ?? 0) + 1))).toEqual(json);
      }),
    );
  });
});
