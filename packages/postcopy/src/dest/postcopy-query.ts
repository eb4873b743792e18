import type { PostcopyPhase } from '@e2k-migrate/migration';
import type { FaultStatsSnapshot } from './fault-stats.js';
import type { PlacementCounters } from './page-placer.js';
import type { PostcopyRecordCounts } from './postcopy-ram-sink.js';

/**
 * The destination's postcopy fields of `query-migrate`: QEMU 7.2's `postcopy-blocktime` and
 * `postcopy-vcpu-blocktime` (ms, with the postcopy-blocktime capability), QEMU 10.1's latency
 * fields (`postcopy-latency` ns, `postcopy-latency-dist` bucket N = [2^N, 2^(N+1)) µs,
 * `postcopy-vcpu-latency`, `postcopy-non-vcpu-latency`), and e2k-migrate's `x-postcopy-*`:
 * the demand-paging backend (`uffd` or `cooperative`, with the reason for the fallback), the
 * postcopy state, page requests sent, faults, placements.
 */
export function postcopyQuery(s: {
  phase: PostcopyPhase;
  backend: 'uffd' | 'cooperative' | undefined;
  backendReason: string | undefined;
  blocktime: boolean;
  requests: number;
  outstanding: number;
  stats: FaultStatsSnapshot;
  pages: PlacementCounters | undefined;
  records: PostcopyRecordCounts;
  discarded: number;
}): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  if (s.blocktime) {
    out['postcopy-blocktime'] = s.stats.blocktimeMs;
    out['postcopy-vcpu-blocktime'] = s.stats.vcpuBlocktimeMs;
  }
  out['postcopy-latency'] = s.stats.latencyNs;
  out['postcopy-latency-dist'] = s.stats.latencyDist;
  out['postcopy-vcpu-latency'] = s.stats.vcpuLatencyNs;
  out['postcopy-non-vcpu-latency'] = s.stats.nonVcpuLatencyNs;
  if (s.backend) out['x-postcopy-backend'] = s.backend;
  if (s.backendReason) out['x-postcopy-backend-reason'] = s.backendReason;
  out['x-postcopy-state'] = s.phase;
  out['x-postcopy-requests'] = s.requests;
  out['x-postcopy-outstanding-requests'] = s.outstanding;
  out['x-postcopy-faults'] = s.stats.faults;
  out['x-postcopy-discarded-bytes'] = s.discarded;
  out['x-postcopy-records'] = { ...s.records };
  if (s.pages) out['x-postcopy-pages'] = { ...s.pages };
  return out;
}
