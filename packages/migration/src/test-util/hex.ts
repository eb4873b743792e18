/**
 * Test helper: bytes from an annotated hex listing. Tokens are hex byte groups (`51 45 56 4d`,
 * `0000000d`) or quoted ASCII (`"pc.ram"`); everything after `#` on a line is a comment.
 */
export function hex(listing: string): Uint8Array {
  const out: number[] = [];
  for (const raw of listing.split('\n')) {
    const line = raw.replace(/#.*$/, '');
    const re = /"([^"]*)"|([0-9a-fA-F]+)/g;
    for (let m = re.exec(line); m !== null; m = re.exec(line)) {
      if (m[1] !== undefined) for (const ch of m[1]) out.push(ch.charCodeAt(0));
      else {
        const h = m[2] as string;
        if (h.length % 2) throw new Error(`odd hex group "${h}"`);
        for (let i = 0; i < h.length; i += 2) out.push(Number.parseInt(h.slice(i, i + 2), 16));
      }
    }
  }
  return new Uint8Array(out);
}

export function toHex(b: Uint8Array): string {
  return Buffer.from(b).toString('hex');
}
