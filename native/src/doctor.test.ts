import { describe, expect, it } from 'vitest';
import { doctorReport } from './doctor.js';
import { backendInfo, nativeAddon } from './loader.js';

describe('doctorReport', () => {
  it('names the backend in use and probes the kernel consistently with it', () => {
    const r = doctorReport();
    expect(r.backend.name).toBe(backendInfo().name);
    expect(r.backend.reason).toBe(backendInfo().reason);
    expect(r.kernel.release.length).toBeGreaterThan(0);
    expect(JSON.parse(JSON.stringify(r))).toEqual(r); // plain JSON for --json
    const probe = nativeAddon()?.probe();
    if (probe) {
      expect(r.userfaultfd.syscall).toBe(probe.uffdSyscallErrno === 0 ? 'ok' : expect.any(String));
      expect(r.wpAsync).toBe(probe.wpAsync);
      expect(r.pagemapScan).toBe(probe.pagemapScan);
      expect(r.dirtyTracking).toBe(probe.wpAsync && probe.pagemapScan ? 'kernel' : 'software');
      if (probe.uffdFeatures & (1 << 15)) expect(r.userfaultfd.features).toContain('WP_ASYNC');
    } else {
      expect(r.wpAsync).toBeNull();
      expect(r.dirtyTracking).toBe('software');
      expect(r.demandPaging).toBe('cooperative');
      expect(r.userfaultfd.syscall).toBe('unknown');
    }
    if (r.hugepages.total !== null) expect(r.hugepages.free).toBeLessThanOrEqual(r.hugepages.total);
  });
});
