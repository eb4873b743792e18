import type { MigrationStatus } from './state.js';

/** RAM counters of the source, named as QEMU's `query-migrate` `ram` object names them. */
export interface RamStats {
  transferred: number;
  remaining: number;
  total: number;
  duplicate: number;
  skipped: number;
  normal: number;
  'normal-bytes': number;
  'dirty-pages-rate': number;
  mbps: number;
  'dirty-sync-count': number;
  'postcopy-requests': number;
  'page-size': number;
  'multifd-bytes': number;
  'pages-per-second': number;
  'precopy-bytes': number;
  'downtime-bytes': number;
  'postcopy-bytes': number;
  'dirty-sync-missed-zero-copy': number;
}

export interface XbzrleStats {
  'cache-size': number;
  bytes: number;
  pages: number;
  'cache-miss': number;
  'cache-miss-rate': number;
  'encoding-rate': number;
  overflow: number;
}

/** The `query-migrate` reply (QEMU 7.2 field names) plus e2k-migrate extras prefixed `x-`. */
export interface QueryMigrate {
  status?: MigrationStatus;
  'total-time'?: number;
  'setup-time'?: number;
  'expected-downtime'?: number;
  downtime?: number;
  'cpu-throttle-percentage'?: number;
  'error-desc'?: string;
  ram?: RamStats;
  'xbzrle-cache'?: XbzrleStats;
  'postcopy-blocktime'?: number;
  'postcopy-vcpu-blocktime'?: number[];
  /** Destination, QEMU 10.1 names: average remote-fault latency (ns) … */
  'postcopy-latency'?: number;
  /** … histogram: bucket N counts faults resolved in [2^N, 2^(N+1)) µs … */
  'postcopy-latency-dist'?: number[];
  /** … per vCPU (ns), and for faults of threads that are not vCPUs (ns). */
  'postcopy-vcpu-latency'?: number[];
  'postcopy-non-vcpu-latency'?: number;
  [extra: `x-${string}`]: unknown;
}

export function emptyRamStats(pageSize = 4096): RamStats {
  return {
    transferred: 0,
    remaining: 0,
    total: 0,
    duplicate: 0,
    skipped: 0,
    normal: 0,
    'normal-bytes': 0,
    'dirty-pages-rate': 0,
    mbps: 0,
    'dirty-sync-count': 0,
    'postcopy-requests': 0,
    'page-size': pageSize,
    'multifd-bytes': 0,
    'pages-per-second': 0,
    'precopy-bytes': 0,
    'downtime-bytes': 0,
    'postcopy-bytes': 0,
    'dirty-sync-missed-zero-copy': 0,
  };
}

/**
 * Builds the source's `query-migrate` reply the way QEMU 7.2's fill_source_migration_info does:
 * nothing but `status` in setup/failed(+error-desc)/cancelled; times and RAM while running and
 * when completed; `expected-downtime` while running, `downtime` once completed; `xbzrle-cache`
 * when the capability is on; `cpu-throttle-percentage` while throttling.
 */
export function buildQueryMigrate(s: {
  status: MigrationStatus;
  error?: string;
  now: number;
  startTime: number;
  setupTime: number;
  totalTime?: number;
  downtime?: number;
  expectedDowntime: number;
  ram: RamStats;
  xbzrle?: XbzrleStats;
  throttlePercentage: number;
  extras?: Record<`x-${string}`, unknown>;
}): QueryMigrate {
  switch (s.status) {
    case 'none':
      return {};
    case 'setup':
    case 'cancelled':
      return { status: s.status };
    case 'failed':
      return { status: 'failed', ...(s.error ? { 'error-desc': s.error } : {}) };
    default: {
      const completed = s.status === 'completed';
      const out: QueryMigrate = { status: s.status, 'setup-time': s.setupTime };
      if (completed) {
        out['total-time'] = s.totalTime ?? s.now - s.startTime;
        out.downtime = s.downtime ?? 0;
      } else {
        out['total-time'] = Math.round(s.now - s.startTime);
        out['expected-downtime'] = Math.round(s.expectedDowntime);
      }
      out.ram = { ...s.ram };
      if (s.xbzrle) out['xbzrle-cache'] = { ...s.xbzrle };
      if (s.throttlePercentage > 0) out['cpu-throttle-percentage'] = s.throttlePercentage;
      return { ...out, ...(s.extras ?? {}) };
    }
  }
}
