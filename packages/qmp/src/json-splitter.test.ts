import { describe, expect, it } from 'vitest';
import { JsonSplitter } from './json-splitter.js';

describe('JsonSplitter', () => {
  it('splits values that arrive in pieces or several per chunk', () => {
    const s = new JsonSplitter();
    expect(s.push('{"execute": "a"')).toEqual([]);
    expect(s.push('}{"execute":"b","arguments":{"x":[1,{"y":"}"}]}}\r\n  {"id"')).toEqual([
      { ok: true, value: { execute: 'a' } },
      { ok: true, value: { execute: 'b', arguments: { x: [1, { y: '}' }] } } },
    ]);
    expect(s.push(': "q\\"{"}')).toEqual([{ ok: true, value: { id: 'q"{' } }]);
    expect(s.pending).toBe(0);
  });

  it('decodes UTF-8 split across chunks', () => {
    const s = new JsonSplitter();
    const bytes = new TextEncoder().encode('{"s": "é€"}');
    expect(s.push(bytes.subarray(0, 8))).toEqual([]);
    expect(s.push(bytes.subarray(8))).toEqual([{ ok: true, value: { s: 'é€' } }]);
  });

  it('reports stray text and bad JSON, then resynchronises', () => {
    const s = new JsonSplitter();
    const r = s.push('garbage {"a": tru} {"ok": 1}');
    expect(r[0]).toEqual({ ok: false, error: "JSON parse error, invalid token 'garbage'" });
    expect(r[1]?.ok).toBe(false);
    expect(r[2]).toEqual({ ok: true, value: { ok: 1 } });
  });

  it('drops an oversized or too deep value with one error and continues', () => {
    const s = new JsonSplitter({ maxBytes: 64, maxDepth: 4 });
    const big = `{"x": "${'a'.repeat(200)}"}`;
    expect(s.push(`${big}{"n":1}`)).toEqual([
      { ok: false, error: 'JSON parse error, message longer than 64 bytes' },
      { ok: true, value: { n: 1 } },
    ]);
    expect(s.push('[[[[[[1]]]]]] {"n":2}')).toEqual([
      { ok: false, error: 'JSON parse error, nesting deeper than 4' },
      { ok: true, value: { n: 2 } },
    ]);
  });
});
