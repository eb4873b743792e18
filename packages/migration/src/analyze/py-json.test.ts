import { describe, expect, it } from 'vitest';
import { pyJsonDumps, pyString, toPlainJson } from './py-json.js';

describe('Python-style JSON', () => {
  it('indents by 4 with ", " / ": " separators like json.dumps(indent=4)', () => {
    const v = new Map<string, unknown>([
      ['b', new Map([['x', '0x01']])],
      ['a', ['0x00', true, []]],
      ['e', new Map()],
    ]);
    expect(pyJsonDumps(v as never)).toBe(
      '{\n    "b": {\n        "x": "0x01"\n    },\n    "a": [\n        "0x00",\n        true,\n        []\n    ],\n    "e": {}\n}',
    );
  });

  it('keeps Map insertion order, even for integer-like keys', () => {
    expect(
      pyJsonDumps(
        new Map([
          ['2', 'a'],
          ['1', 'b'],
        ]),
      ),
    ).toBe('{\n    "2": "a",\n    "1": "b"\n}');
    expect(toPlainJson(new Map([['k', [new Map([['x', 'y']])]]]))).toEqual({ k: [{ x: 'y' }] });
  });

  it('escapes like ensure_ascii=True (lower-case \\u escapes, surrogate pairs)', () => {
    expect(pyString('a"b\\c\n\t\u0001\u00e9\u{1f600}\u007f/')).toBe(
      '"a\\"b\\\\c\\n\\t\\u0001\\u00e9\\ud83d\\ude00\u007f/"',
    );
  });
});
