import { expect } from 'vitest';
import { MigrationStreamError } from '../errors.js';

/** Runs `fn`, expects it to throw a MigrationStreamError with a numeric offset, and returns it. */
export function catchStreamError(fn: () => unknown): MigrationStreamError {
  try {
    fn();
  } catch (err) {
    expect(err).toBeInstanceOf(MigrationStreamError);
    return err as MigrationStreamError;
  }
  throw new Error('expected a MigrationStreamError, but nothing was thrown');
}

/** Awaits `p`, expects a MigrationStreamError rejection, and returns it. */
export async function rejectsStreamError(p: Promise<unknown>): Promise<MigrationStreamError> {
  try {
    await p;
  } catch (err) {
    expect(err).toBeInstanceOf(MigrationStreamError);
    return err as MigrationStreamError;
  }
  throw new Error('expected a MigrationStreamError rejection, but it resolved');
}
