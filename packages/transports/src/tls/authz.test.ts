import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { CLIENT_DN, tempDir } from '../../test/helpers.js';
import { isTransportError } from '../errors.js';
import { AuthzList, AuthzListFile, authzSimple, parseAuthzRules } from './authz.js';
import { globMatch } from './glob.js';

describe('globMatch (fnmatch without flags)', () => {
  it.each<[string, string, boolean]>([
    ['CN=*,O=e2k-migrate', CLIENT_DN, true],
    ['CN=*.example,O=*', CLIENT_DN, true],
    ['CN=client.exampl?,O=e2k-migrate', CLIENT_DN, true],
    ['CN=[a-c]lient.example,O=e2k-migrate', CLIENT_DN, true],
    ['CN=[!c]lient.example,O=e2k-migrate', CLIENT_DN, false],
    ['CN=*', CLIENT_DN, true],
    ['O=*', CLIENT_DN, false],
    ['CN=a\\*b', 'CN=a*b', true],
    ['CN=a\\*b', 'CN=axb', false],
    ['CN=a.b', 'CN=axb', false],
    ['[', '[', true],
    ['CN=(x)|y', 'CN=(x)|y', true],
  ])('%s vs %s', (pattern, text, expected) => {
    expect(globMatch(pattern, text)).toBe(expected);
  });
});

describe('authorizers', () => {
  it('authz-simple allows exactly one identity', () => {
    const a = authzSimple('auth0', CLIENT_DN);
    expect(a.isAllowed(CLIENT_DN)).toBe(true);
    expect(a.isAllowed('CN=client.example, O=e2k-migrate')).toBe(true);
    expect(a.isAllowed('CN=other.example,O=e2k-migrate')).toBe(false);
    expect(a.isAllowed('O=e2k-migrate,CN=client.example')).toBe(false);
  });

  it('authz-list: first matching rule wins, then the default policy', () => {
    const a = new AuthzList(
      'l',
      [
        { match: 'CN=bad.example,*', policy: 'deny', format: 'glob' },
        { match: 'CN=*.example,O=e2k-migrate', policy: 'allow', format: 'glob' },
        { match: 'CN=root,O=ops', policy: 'allow', format: 'exact' },
      ],
      'deny',
    );
    expect(a.isAllowed(CLIENT_DN)).toBe(true);
    expect(a.isAllowed('CN=bad.example,O=e2k-migrate')).toBe(false);
    expect(a.isAllowed('CN=root,O=ops')).toBe(true);
    expect(a.isAllowed('CN=nobody')).toBe(false);
    expect(new AuthzList('open', [], 'allow').isAllowed('CN=anyone')).toBe(true);
  });

  it('validates rules like QEMU QAPI does', () => {
    const bad = (rules: unknown): unknown => {
      try {
        parseAuthzRules('x', rules);
      } catch (e) {
        return e;
      }
      return null;
    };
    expect(isTransportError(bad('nope'), 'E_BAD_OBJECT')).toBe(true);
    expect(isTransportError(bad([{ match: 'a', policy: 'maybe' }]), 'E_BAD_OBJECT')).toBe(true);
    expect(isTransportError(bad([{ match: 'a', policy: 'allow', format: 'regex' }]), 'E_BAD_OBJECT')).toBe(true);
    expect(isTransportError(bad([{ match: 'a', policy: 'allow', extra: 1 }]), 'E_BAD_OBJECT')).toBe(true);
    expect(parseAuthzRules('x', [{ match: 'a', policy: 'allow' }])).toEqual([
      { match: 'a', policy: 'allow', format: 'exact' },
    ]);
  });

  it('authz-list-file reads its rules, and re-reads them with refresh', () => {
    const { dir, remove } = tempDir();
    try {
      const file = join(dir, 'authz.json');
      writeFileSync(file, JSON.stringify({ policy: 'deny', rules: [{ match: CLIENT_DN, policy: 'allow' }] }));
      const fixed = new AuthzListFile('f1', file, false);
      const live = new AuthzListFile('f2', file, true);
      expect(fixed.isAllowed(CLIENT_DN)).toBe(true);
      expect(live.isAllowed(CLIENT_DN)).toBe(true);
      writeFileSync(file, JSON.stringify({ policy: 'deny', rules: [] }));
      expect(fixed.isAllowed(CLIENT_DN)).toBe(true);
      expect(live.isAllowed(CLIENT_DN)).toBe(false);
      writeFileSync(file, '{not json');
      expect(live.isAllowed(CLIENT_DN)).toBe(false);
      let err: unknown;
      try {
        new AuthzListFile('f3', file, false);
      } catch (e) {
        err = e;
      }
      expect(isTransportError(err, 'E_BAD_OBJECT')).toBe(true);
    } finally {
      remove();
    }
  });
});
