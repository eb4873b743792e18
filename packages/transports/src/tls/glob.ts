const cache = new Map<string, RegExp>();

/**
 * fnmatch(3) with no flags, as QEMU's `authz-list` `format: "glob"` rules use: `*` matches
 * any run of characters (including `/` and `,`), `?` one character, `[…]` a set (`[!…]` or
 * `[^…]` negated, `a-z` ranges), and `\` quotes the next character.
 */
export function globMatch(pattern: string, text: string): boolean {
  let re = cache.get(pattern);
  if (!re) {
    re = new RegExp(`^${globToRegExpSource(pattern)}$`, 's');
    if (cache.size > 256) cache.clear();
    cache.set(pattern, re);
  }
  return re.test(text);
}

function globToRegExpSource(p: string): string {
  let out = '';
  for (let i = 0; i < p.length; i++) {
    const c = p[i] as string;
    if (c === '*') out += '.*';
    else if (c === '?') out += '.';
    else if (c === '\\' && i + 1 < p.length) out += escapeRe(p[++i] as string);
    else if (c === '[') {
      const close = findClassEnd(p, i);
      if (close < 0) {
        out += '\\[';
        continue;
      }
      let body = p.slice(i + 1, close);
      let negate = false;
      if (body.startsWith('!') || body.startsWith('^')) {
        negate = true;
        body = body.slice(1);
      }
      out += `[${negate ? '^' : ''}${body.replace(/[\\\]^]/g, (m) => `\\${m}`)}]`;
      i = close;
    } else out += escapeRe(c);
  }
  return out;
}

/** Index of the `]` closing the set opened at `open`, or -1. A `]` first in the set is literal. */
function findClassEnd(p: string, open: number): number {
  let j = open + 1;
  if (p[j] === '!' || p[j] === '^') j++;
  if (p[j] === ']') j++;
  const close = p.indexOf(']', j);
  return close;
}

function escapeRe(c: string): string {
  return c.replace(/[.*+?^${}()|[\]\\/-]/g, (m) => `\\${m}`);
}
