import type { BlockMemory, BlockMemoryRequest } from '@e2k-migrate/migration';
import { createGuestMemory, type GuestMemory, HUGE_PAGE, InvalidArgumentError } from '@e2k-migrate/native';

/**
 * A stored migration's RAM block in a guest-memory region, so postcopy can register it with
 * userfaultfd: 2 MiB hugetlb when the source's block has 2 MiB host pages (its MEM_SIZE
 * page_size), else anonymous memory. `pageView` works in target pages whatever the host page.
 */
export class GuestBlockMemory implements BlockMemory {
  readonly memory: GuestMemory;
  readonly name: string;
  readonly size: number;
  readonly pageSize: number;

  constructor(req: BlockMemoryRequest) {
    const host = req.hostPageSize ?? req.pageSize;
    if (host !== req.pageSize && host !== HUGE_PAGE) {
      throw new InvalidArgumentError(`RAM block "${req.name}" page size`, `${req.pageSize} or ${HUGE_PAGE}`, host);
    }
    this.memory = createGuestMemory({
      size: req.size,
      kind: host === HUGE_PAGE ? 'hugetlb' : 'anonymous',
      name: `incoming:${req.name}`,
    });
    this.name = req.name;
    this.size = req.size;
    this.pageSize = req.pageSize;
  }

  pageView(page: number, count = 1): Uint8Array {
    const start = page * this.pageSize;
    const viewBytes = this.memory.handle.viewBytes;
    const v = Math.floor(start / viewBytes);
    const view = this.memory.views()[v] as Uint8Array;
    const at = start - v * viewBytes;
    const end = at + count * this.pageSize;
    if (end > view.length) {
      throw new InvalidArgumentError(
        `pageView(${page}, ${count}) of "${this.name}"`,
        'pages inside one 1 GiB view',
        end,
      );
    }
    return view.subarray(at, end);
  }

  close(): void {
    this.memory.close();
  }
}
