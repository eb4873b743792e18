import { PassThrough } from 'node:stream';
import { describe, expect, it } from 'vitest';
import { UsageError } from '../command.js';
import { sendCommand } from './send.js';

function run(
  values: Record<string, string | boolean | string[]>,
  positionals = ['/nonexistent-store', 'tcp:127.0.0.1:9'],
) {
  const out = new PassThrough();
  return sendCommand.run({ values, positionals, stdout: out, stderr: out });
}

/** Bad postcopy command lines are refused before any file is read or connection made. */
describe('e2k-migrate send: postcopy options', () => {
  it('--postcopy-after needs postcopy-ram and a number of seconds', async () => {
    await expect(run({ 'postcopy-after': '1' })).rejects.toThrow(/--postcopy-after needs --caps postcopy-ram/);
    await expect(run({ caps: 'postcopy-ram', 'postcopy-after': 'soon' })).rejects.toBeInstanceOf(UsageError);
    await expect(run({ caps: 'postcopy-ram', 'postcopy-after': '-1' })).rejects.toBeInstanceOf(UsageError);
  });

  it('postcopy needs a socket and refuses --zero-pages skip', async () => {
    await expect(run({ caps: 'postcopy-ram' }, ['/x', 'exec:cat > /dev/null'])).rejects.toThrow(/needs a socket/);
    await expect(run({ caps: 'postcopy-ram', 'zero-pages': 'skip' })).rejects.toBeInstanceOf(UsageError);
  });

  it('--set and --host-page-size are checked (typed errors naming the problem)', async () => {
    await expect(run({ set: ['max-bandwidth'] })).rejects.toBeInstanceOf(UsageError);
    await expect(run({ set: ['no-such-parameter=1'] })).rejects.toMatchObject({ code: 'E_UNKNOWN_PARAMETER' });
    await expect(run({ set: ['downtime-limit=-5'] })).rejects.toMatchObject({ code: 'E_BAD_PARAMETER' });
    await expect(run({ caps: 'postcopy-ram', 'host-page-size': ['mem=3K'] })).rejects.toBeInstanceOf(UsageError);
  });

  it("postcopy-preempt without postcopy-ram is QEMU's capability conflict", async () => {
    await expect(run({ caps: 'postcopy-preempt' })).rejects.toMatchObject({ code: 'E_CAPABILITY_CONFLICT' });
  });

  it('a valid command line reaches the store (which does not exist here): E_STORE_INVALID', async () => {
    await expect(
      run({ caps: 'postcopy-ram,postcopy-preempt', 'postcopy-after': '0.5', set: ['max-postcopy-bandwidth=16M'] }),
    ).rejects.toMatchObject({ code: 'E_STORE_INVALID' });
  });
});
