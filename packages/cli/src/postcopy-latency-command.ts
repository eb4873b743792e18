import type { LatencySummary } from '@e2k-migrate/postcopy';
import { argBool, type JsonObject, QmpFailure, type QmpServer } from '@e2k-migrate/qmp';

/** What `x-query-postcopy-latency` reads: the process's postcopy destination, once there is one. */
export interface PostcopyLatencySource {
  latencySummary(): LatencySummary;
  latencySamples(): Float64Array;
}

/**
 * `x-query-postcopy-latency` (e2k-migrate extension): the destination's remote-fault latencies —
 * fault read → host page placed, the time `postcopy-latency` averages — as exact percentiles
 * instead of QEMU's power-of-two histogram: `{resolved, samples, p50-ns, p90-ns, p99-ns, max-ns}`,
 * and with `{"samples": true}` also `samples-ns`, every kept latency. Up to 131072 latencies are
 * kept; past that a uniform random subset of that size (`samples` < `resolved`).
 */
export function registerPostcopyLatencyCommand(
  server: QmpServer,
  current: () => PostcopyLatencySource | undefined,
): void {
  server.commands.register('x-query-postcopy-latency', {
    args: ['samples'],
    handler: (args) => {
      const withSamples = argBool(args, 'samples') === true;
      const pc = current();
      if (pc === undefined) {
        throw new QmpFailure('x-query-postcopy-latency: no postcopy incoming migration in this process');
      }
      const s = pc.latencySummary();
      const ns = (x: number) => (Number.isFinite(x) ? x : null);
      const out: JsonObject = {
        resolved: s.resolved,
        samples: s.samples,
        'p50-ns': ns(s.p50Ns),
        'p90-ns': ns(s.p90Ns),
        'p99-ns': ns(s.p99Ns),
        'max-ns': ns(s.maxNs),
      };
      if (withSamples) out['samples-ns'] = [...pc.latencySamples()];
      return out;
    },
  });
}
