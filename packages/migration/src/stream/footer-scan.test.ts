import { describe, expect, it } from 'vitest';
import { rejectsStreamError } from '../test-util/catch.js';
import { hex } from '../test-util/hex.js';
import { chunks } from '../test-util/synth.js';
import { ByteSource } from './byte-source.js';
import { scanForFooter } from './footer-scan.js';
import type { SectionInfo } from './section-loader.js';
import { StreamState } from './stream-state.js';

const timer: SectionInfo = {
  kind: 'FULL',
  sectionId: 0,
  idstr: 'timer',
  instanceId: 0,
  versionId: 2,
  offset: 0,
  bodyOffset: 0,
  depth: 0,
  label: 'timer (0)',
};

describe('footer scan', () => {
  it('skips a false footer inside the body (the holdout timer case) and finds the real one', async () => {
    // cpu_ticks_offset holds `7e 00 00 00 00`: a footer of section 0 followed by 00 00 …, which is
    // not a plausible record (an EOF must end the data or precede the vmdesc).
    const body = hex('00 00 01 7e 00 00 00 00 00 00 00 00 00 00 00 00 00 00 00 00 00 00 00 00');
    const rest = hex('7e 00000000 # footer\n 04 00000004 0b "globalstate" 00000000 00000001 # next FULL');
    const state = new StreamState();
    for (const sizes of [[1000], [1], [7, 3]]) {
      const src = new ByteSource(chunks(new Uint8Array([...body, ...rest]), sizes));
      expect(await scanForFooter(src, timer, state)).toBe(24);
      expect(src.offset).toBe(0);
    }
  });

  it('accepts what may follow a section: EOF at the end or before a vmdesc, PART of a known id, a command', async () => {
    const state = new StreamState();
    state.knownSectionIds.add(2);
    const body = hex('aa bb');
    for (const next of [hex('00'), hex('00 06 0000'), hex('02 00000002'), hex('08 0002 0004 00000003'), hex('')]) {
      const src = new ByteSource(new Uint8Array([...body, ...hex('7e 00000000'), ...next]));
      expect(await scanForFooter(src, timer, state)).toBe(2);
    }
    for (const next of [
      hex('00 42'),
      hex('02 00000009'),
      hex('08 0002 0005'),
      hex('01 00000003 03 "r\u0001m" 00000000 00000004'),
      hex('7e'),
    ]) {
      const src = new ByteSource(new Uint8Array([...body, ...hex('7e 00000000'), ...next]));
      expect((await rejectsStreamError(scanForFooter(src, timer, state))).code).toBe('E_FOOTER_NOT_FOUND');
    }
  });

  it('gives up at the size bound with a typed error naming the section', async () => {
    const src = new ByteSource(chunks(new Uint8Array(100_000), [4096]));
    const e = await rejectsStreamError(scanForFooter(src, { ...timer, bodyOffset: 7 }, new StreamState(), 10_000));
    expect(e).toMatchObject({ code: 'E_FOOTER_NOT_FOUND', offset: 7, section: 'timer (0)' });
  });
});
