/**
 * Capability gating for tests that need real kernel features or external programs.
 *
 * A test that cannot run here is never skipped quietly: `needs()` prints a loud line naming the
 * missing capability and why, and when the capability is listed in `E2K_REQUIRE`
 * (comma-separated: native,uffd,hugetlb,qemu) it fails instead of skipping.
 */
export type Capability = 'native' | 'uffd' | 'hugetlb' | 'qemu';

export function requiredCapabilities(): Set<string> {
  return new Set(
    (process.env.E2K_REQUIRE ?? '')
      .split(',')
      .map((s) => s.trim())
      .filter(Boolean),
  );
}

/**
 * Decide whether a capability-gated suite runs.
 * @returns true when available; false when absent and not required (caller skips).
 * @throws when absent and required through E2K_REQUIRE.
 */
export function needs(cap: Capability, available: boolean, reason: string): boolean {
  if (available) return true;
  const msg = `capability "${cap}" is not available: ${reason}`;
  if (requiredCapabilities().has(cap)) {
    throw new Error(`${msg} (required by E2K_REQUIRE=${process.env.E2K_REQUIRE})`);
  }
  process.stderr.write(`\n*** SKIPPING: ${msg}. Set E2K_REQUIRE=${cap} to make this a failure. ***\n`);
  return false;
}
