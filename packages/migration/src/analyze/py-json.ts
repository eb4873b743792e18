/**
 * JSON text formatted the way Python's `json` module writes it with `indent=4` and
 * `separators=(',', ': ')` (what QEMU's analyze-migration.py prints): ASCII only (other code
 * points as lower-case `\uXXXX`, surrogate pairs beyond the BMP), `{}`/`[]` for empty containers.
 * Maps keep their insertion order, which is how the script's ordered dicts behave.
 */
export type PyJsonValue =
  | string
  | number
  | boolean
  | null
  | readonly PyJsonValue[]
  | ReadonlyMap<string, PyJsonValue>
  | { readonly [key: string]: PyJsonValue };

export function pyJsonDumps(value: PyJsonValue, indent = 4): string {
  const out: string[] = [];
  write(value, 0, indent, out);
  return out.join('');
}

function write(v: PyJsonValue, level: number, indent: number, out: string[]): void {
  if (v === null) {
    out.push('null');
  } else if (typeof v === 'string') {
    out.push(pyString(v));
  } else if (typeof v === 'number') {
    out.push(Number.isFinite(v) ? String(v) : v > 0 ? 'Infinity' : v < 0 ? '-Infinity' : 'NaN');
  } else if (typeof v === 'boolean') {
    out.push(v ? 'true' : 'false');
  } else if (Array.isArray(v)) {
    if (v.length === 0) {
      out.push('[]');
      return;
    }
    const pad = ' '.repeat((level + 1) * indent);
    out.push('[\n');
    v.forEach((item: PyJsonValue, i: number) => {
      out.push(pad);
      write(item, level + 1, indent, out);
      out.push(i + 1 < v.length ? ',\n' : '\n');
    });
    out.push(`${' '.repeat(level * indent)}]`);
  } else {
    const entries = v instanceof Map ? [...v.entries()] : Object.entries(v as Record<string, PyJsonValue>);
    if (entries.length === 0) {
      out.push('{}');
      return;
    }
    const pad = ' '.repeat((level + 1) * indent);
    out.push('{\n');
    entries.forEach(([k, item], i) => {
      out.push(pad, pyString(k), ': ');
      write(item as PyJsonValue, level + 1, indent, out);
      out.push(i + 1 < entries.length ? ',\n' : '\n');
    });
    out.push(`${' '.repeat(level * indent)}}`);
  }
}

const ESC: Record<string, string> = {
  '"': '\\"',
  '\\': '\\\\',
  '\n': '\\n',
  '\r': '\\r',
  '\t': '\\t',
  '\b': '\\b',
  '\f': '\\f',
};

/** A string as Python's json.dumps(ensure_ascii=True) writes it. */
export function pyString(s: string): string {
  let r = '"';
  for (let i = 0; i < s.length; i++) {
    const ch = s[i] as string;
    const c = s.charCodeAt(i);
    const e = ESC[ch];
    if (e !== undefined) r += e;
    else if (c < 0x20 || c > 0x7e) r += c === 0x7f ? ch : `\\u${c.toString(16).padStart(4, '0')}`;
    else r += ch;
  }
  return `${r}"`;
}

/** Converts Maps (recursively) to plain objects, e.g. to compare with JSON.parse output. */
export function toPlainJson(v: PyJsonValue): unknown {
  if (v instanceof Map) {
    const o: Record<string, unknown> = {};
    for (const [k, x] of v) o[k] = toPlainJson(x);
    return o;
  }
  if (Array.isArray(v)) return v.map((x: PyJsonValue) => toPlainJson(x));
  if (v !== null && typeof v === 'object') {
    const o: Record<string, unknown> = {};
    for (const [k, x] of Object.entries(v)) o[k] = toPlainJson(x as PyJsonValue);
    return o;
  }
  return v;
}
