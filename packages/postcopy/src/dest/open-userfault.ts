import { createUserfault, type FaultEvent, type Userfault } from '@e2k-migrate/native';
import type { PostcopyBlock } from './postcopy-block.js';

/** How the destination pages guest memory in: `auto` picks userfaultfd when it can. */
export type UserfaultChoice = 'auto' | 'uffd' | 'cooperative';

/**
 * Opens the demand-paging backend for the blocks (DESIGN §6): a real userfaultfd (the addon's
 * fault thread) when the regions are native memory and the kernel grants one; otherwise the
 * cooperative fallback, where the memory API checks the received bitmap and waits on Atomics.
 * `reason` says why the fallback was chosen — it is reported, never passed off as userfaultfd.
 * `uffd` never falls back (a typed native error instead).
 */
export function openUserfault(
  choice: UserfaultChoice,
  blocks: readonly PostcopyBlock[],
  onFaults: (events: FaultEvent[]) => void,
): { userfault: Userfault; reason: string | undefined } {
  const cooperative = (reason: string) => ({ userfault: createUserfault({ mode: 'cooperative', onFaults }), reason });
  if (choice === 'cooperative') return cooperative('cooperative demand paging was asked for');
  if (choice === 'uffd') return { userfault: createUserfault({ mode: 'uffd', onFaults }), reason: undefined };
  const foreign = blocks.find((b) => b.memory.backend !== 'native');
  if (foreign) {
    return cooperative(`RAM block "${foreign.name}" is not native memory (the addon is not loaded or E2K_NATIVE=0)`);
  }
  try {
    return { userfault: createUserfault({ mode: 'auto', onFaults }), reason: undefined };
  } catch (err) {
    const e = err as Error & { code?: string };
    return cooperative(`userfaultfd is unavailable (${e.code ?? 'error'}: ${e.message})`);
  }
}
