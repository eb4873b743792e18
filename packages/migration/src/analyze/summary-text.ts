import type { RamCounts, Summary } from './summary.js';

const COUNT_KEYS: (keyof RamCounts)[] = ['pages', 'zero', 'xbzrle', 'compressed', 'multifd_pages'];

function counts(c: Partial<RamCounts>): string {
  const parts = COUNT_KEYS.filter((k) => (c[k] ?? 0) > 0).map((k) => `${k}=${c[k]}`);
  return parts.length ? parts.join(' ') : 'no pages';
}

function hex(n: number): string {
  return `0x${n.toString(16)}`;
}

/** A human-readable rendering of a {@link Summary} (what `analyze --format summary` prints without --json). */
export function formatSummaryText(s: Summary): string {
  const L: string[] = [];
  L.push(`input        ${s.input.name}${s.input.gzip ? ' (gzip)' : ''}, ${s.input.bytes} bytes`);
  if (s.configuration) {
    const extra = [
      s.configuration.capabilities?.length ? `capabilities ${s.configuration.capabilities.join(',')}` : '',
      s.configuration.uuid ? `uuid ${s.configuration.uuid}` : '',
      s.configuration.target_page_bits ? `target-page-bits ${s.configuration.target_page_bits}` : '',
    ].filter(Boolean);
    L.push(`machine      ${s.configuration.machine}${extra.length ? ` (${extra.join('; ')})` : ''}`);
  }
  L.push(`page size    ${s.page_size}`);
  if (s.ram_blocks.length) {
    L.push('RAM blocks');
    for (const b of s.ram_blocks) {
      const x = [
        b.page_size ? `page_size ${hex(b.page_size)}` : '',
        b.mr_addr !== undefined ? `mr_addr ${hex(b.mr_addr)}` : '',
      ].filter(Boolean);
      L.push(`  ${b.name.padEnd(28)} ${hex(b.used_length).padStart(12)}${x.length ? `  ${x.join(' ')}` : ''}`);
    }
  }
  L.push('records');
  for (const r of s.records) {
    const ind = '  '.repeat(r.depth + 1);
    const at = String(r.offset).padStart(10);
    if (r.type.startsWith('SECTION_')) {
      const len =
        r.length === undefined ? '' : ` ${r.length} B${r.length_guessed ? ' (length guessed by footer scan)' : ''}`;
      const ram = r.ram ? `  ${counts(r.ram as Partial<RamCounts>)}` : '';
      L.push(`${at}${ind}${r.type.slice(8).padEnd(5)} ${String(r.idstr)} (${r.section_id})${len}${ram}`);
    } else if (r.type === 'COMMAND') {
      const { offset: _o, depth: _d, type: _t, cmd, length: _l, ...f } = r;
      const fields = Object.entries(f)
        .map(([k, v]) => `${k}=${typeof v === 'object' ? JSON.stringify(v) : String(v)}`)
        .join(' ');
      L.push(`${at}${ind}CMD   ${String(cmd)}${fields ? ` ${fields}` : ''}`);
    } else {
      L.push(`${at}${ind}${r.type}${r.length !== undefined ? ` ${r.length} B` : ''}`);
    }
  }
  const t = s.ram_totals;
  L.push(
    `RAM totals   ${counts(t)} xbzrle_bytes=${t.xbzrle_bytes} eos=${t.eos}` +
      (t.discard_ranges ? ` discards=${t.discard_ranges} (${t.discard_bytes} B)` : '') +
      (t.preempt_pages ? ` preempt_pages=${t.preempt_pages}` : ''),
  );
  if (s.package) L.push(`package      ${s.package.length} B at ${s.package.offset}: ${s.package.contents.join(', ')}`);
  if (s.multifd) {
    L.push(`multifd      ${s.multifd.channels.length} channel(s), ${s.multifd.epochs} epochs`);
    for (const c of s.multifd.channels) {
      L.push(
        `  channel ${c.id}: ${c.file} packets=${c.packets} sync=${c.sync_packets} pages=${c.pages} sync_with_pages=${c.sync_packets_with_pages} trailing=${c.trailing_packets} compression=${c.compression}`,
      );
    }
  }
  if (s.preempt)
    L.push(`preempt      ${s.preempt.name}: ${counts(s.preempt)} eos=${s.preempt.eos} (${s.preempt.bytes} B)`);
  if (s.return_path) {
    const c = Object.entries(s.return_path.counts)
      .map(([k, v]) => `${k}=${v}`)
      .join(' ');
    L.push(`return path  ${s.return_path.name}: ${s.return_path.bytes} B, ${c || 'no messages'}`);
  }
  if (s.vmdesc) L.push(`vmdesc       ${s.vmdesc.length} B, ${s.vmdesc.devices} devices (from ${s.vmdesc.source})`);
  if (s.ram_sha256) {
    L.push('RAM sha256');
    for (const [k, v] of Object.entries(s.ram_sha256)) L.push(`  ${k.padEnd(28)} ${v}`);
  }
  for (const w of s.warnings) L.push(`warning: ${w}`);
  return `${L.join('\n')}\n`;
}
