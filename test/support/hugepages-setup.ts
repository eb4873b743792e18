import { HugePageError, reserveHugePages } from '../../native/src/hugepages.js';
import { requiredCapabilities } from './capabilities.js';

/**
 * Vitest global setup: reserves 2 MiB huge pages for the whole run through the pool's
 * `nr_hugepages` (native/src/hugepages.ts: checks HugePages_Free, shares the pool with a bench or
 * another run on the machine) and gives them back at the end.
 *
 * Short (not root, no memory): fails loudly when E2K_REQUIRE lists `hugetlb`; otherwise prints a
 * loud line, and the hugetlb suites find no free huge page and skip through `needs('hugetlb', ...)`.
 */
export const HUGEPAGES_WANTED = 64;

export default function setup(): () => void {
  try {
    const r = reserveHugePages(HUGEPAGES_WANTED, { purpose: 'the test run' });
    return () => {
      r.release();
    };
  } catch (err) {
    if (!(err instanceof HugePageError)) throw err;
    const reason = err.message;
    if (requiredCapabilities().has('hugetlb')) {
      throw new Error(`huge pages: ${reason} (required by E2K_REQUIRE=${process.env.E2K_REQUIRE})`);
    }
    process.stderr.write(
      `\n*** HUGE PAGES UNAVAILABLE: ${reason}. hugetlb tests will skip; set E2K_REQUIRE=hugetlb to fail. ***\n`,
    );
    return () => {};
  }
}
