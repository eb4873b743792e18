import { describe, expect, it } from 'vitest';
import { AutoConverge, throttleSleepMs } from './auto-converge.js';
import { Capabilities, MIGRATION_CAPABILITIES } from './capabilities.js';
import { ConvergenceEstimator } from './convergence.js';
import { MigrationControlError } from './errors.js';
import { DEFAULT_PARAMETERS, Parameters, parseSize } from './parameters.js';
import { RateLimiter } from './rate-limiter.js';
import { DESTINATION_TRANSITIONS, type MigrationState, SOURCE_TRANSITIONS, step } from './state.js';
import { buildQueryMigrate, emptyRamStats } from './stats.js';

function err(fn: () => unknown): MigrationControlError {
  try {
    fn();
  } catch (e) {
    if (e instanceof MigrationControlError) return e;
    throw e;
  }
  throw new Error('expected a MigrationControlError');
}

describe('capabilities', () => {
  it('lists QEMU 7.2 capabilities in QAPI order, all off', () => {
    const c = new Capabilities(['xbzrle', 'auto-converge']);
    expect(c.query().map((x) => x.capability)).toEqual([...MIGRATION_CAPABILITIES]);
    expect(c.query().every((x) => !x.state)).toBe(true);
    expect(MIGRATION_CAPABILITIES).toHaveLength(21);
  });

  it('rejects an unknown capability listing the valid ones, and applies nothing', () => {
    const c = new Capabilities(['xbzrle']);
    const e = err(() =>
      c.set([
        { capability: 'xbzrle', state: true },
        { capability: 'turbo', state: true },
      ]),
    );
    expect(e.code).toBe('E_UNKNOWN_CAPABILITY');
    expect(e.valid).toContain('postcopy-preempt');
    expect(e.message).toContain('xbzrle, rdma-pin-all');
    expect(c.has('xbzrle')).toBe(false);
  });

  it('refuses capabilities this build does not implement with a typed not-supported error', () => {
    const e = err(() => new Capabilities(['xbzrle']).set([{ capability: 'multifd', state: true }]));
    expect(e.code).toBe('E_NOT_SUPPORTED');
    expect(e.subject).toBe('multifd');
    // switching an unsupported capability off is fine
    new Capabilities([]).set([{ capability: 'multifd', state: false }]);
  });

  it('rejects combinations QEMU rejects', () => {
    const c = new Capabilities(['postcopy-ram', 'postcopy-preempt', 'x-ignore-shared']);
    expect(err(() => c.set([{ capability: 'postcopy-preempt', state: true }])).code).toBe('E_CAPABILITY_CONFLICT');
    expect(
      err(() =>
        c.set([
          { capability: 'postcopy-ram', state: true },
          { capability: 'x-ignore-shared', state: true },
        ]),
      ).code,
    ).toBe('E_CAPABILITY_CONFLICT');
    c.set([
      { capability: 'postcopy-ram', state: true },
      { capability: 'postcopy-preempt', state: true },
    ]);
    expect(c.enabled()).toEqual(['postcopy-ram', 'postcopy-preempt']);
  });
});

describe('parameters', () => {
  it('start at QEMU 7.2 defaults', () => {
    const p = new Parameters();
    expect(p.get('max-bandwidth')).toBe(134217728);
    expect(p.get('downtime-limit')).toBe(300);
    expect(p.get('xbzrle-cache-size')).toBe(64 << 20);
    expect(p.query()).toEqual(DEFAULT_PARAMETERS);
  });

  it('validates ranges, types and power-of-two cache sizes, all or nothing', () => {
    const p = new Parameters();
    expect(err(() => p.set({ 'downtime-limit': 2_000_001 })).code).toBe('E_BAD_PARAMETER');
    expect(err(() => p.set({ 'cpu-throttle-initial': 0 })).code).toBe('E_BAD_PARAMETER');
    expect(err(() => p.set({ 'xbzrle-cache-size': 3 * 4096 })).message).toContain('power of two');
    expect(err(() => p.set({ 'xbzrle-cache-size': 2048 })).code).toBe('E_BAD_PARAMETER');
    expect(err(() => p.set({ 'max-bandwidth': 1, nonsense: 2 })).code).toBe('E_UNKNOWN_PARAMETER');
    expect(p.get('max-bandwidth')).toBe(134217728);
    expect(err(() => p.set({ 'cpu-throttle-initial': 50, 'max-cpu-throttle': 40 })).subject).toBe('max-cpu-throttle');
  });

  it('accepts command-line strings with size suffixes', () => {
    const p = new Parameters();
    p.set({ 'max-bandwidth': '16M', 'xbzrle-cache-size': '16M', 'cpu-throttle-tailslow': 'true' });
    expect(p.get('max-bandwidth')).toBe(16 << 20);
    expect(p.get('cpu-throttle-tailslow')).toBe(true);
    expect(parseSize('1G')).toBe(2 ** 30);
    expect(Number.isNaN(parseSize('12Q'))).toBe(true);
  });
});

describe('state machines', () => {
  it('walks the source through setup, active, completed', () => {
    let s: MigrationState = { status: 'none' };
    for (const type of ['start', 'setup-done', 'complete'] as const) s = step(SOURCE_TRANSITIONS, s, { type });
    expect(s.status).toBe('completed');
    s = step(SOURCE_TRANSITIONS, s, { type: 'start' });
    expect(s.status).toBe('setup');
  });

  it('keeps the failure reason and refuses illegal transitions', () => {
    const f = step(SOURCE_TRANSITIONS, { status: 'active' }, { type: 'fail', error: 'connection reset' });
    expect(f).toEqual({ status: 'failed', error: 'connection reset' });
    expect(err(() => step(SOURCE_TRANSITIONS, { status: 'completed' }, { type: 'cancel' })).code).toBe(
      'E_ILLEGAL_TRANSITION',
    );
    // once postcopy runs the guest on the destination, cancel is refused
    expect(err(() => step(SOURCE_TRANSITIONS, { status: 'postcopy-active' }, { type: 'cancel' })).code).toBe(
      'E_ILLEGAL_TRANSITION',
    );
  });

  it('pauses and recovers postcopy on both sides', () => {
    for (const t of [SOURCE_TRANSITIONS, DESTINATION_TRANSITIONS]) {
      let s = step(t, { status: 'postcopy-active' }, { type: 'pause', error: 'EPIPE' });
      expect(s).toEqual({ status: 'postcopy-paused', error: 'EPIPE' });
      s = step(t, s, { type: 'recover' });
      s = step(t, s, { type: 'resumed' });
      expect(step(t, s, { type: 'complete' }).status).toBe('completed');
    }
  });
});

describe('rate limiter (100 ms windows)', () => {
  it('allows max-bandwidth/10 bytes per window and waits for the next', async () => {
    let t = 0;
    const slept: number[] = [];
    const rl = new RateLimiter(1_000_000, { now: () => t, sleep: async (ms) => void slept.push(ms) });
    rl.account(99_999);
    expect(rl.exceeded()).toBe(false);
    rl.account(1);
    expect(rl.exceeded()).toBe(true);
    t = 40;
    await rl.waitForWindow();
    expect(slept).toEqual([60]);
    expect(rl.exceeded()).toBe(false);
    t = 300;
    rl.account(500_000);
    expect(rl.exceeded()).toBe(true);
    t = 400;
    expect(rl.exceeded()).toBe(false); // a new window started
  });

  it('is unlimited at 0', () => {
    const rl = new RateLimiter(0);
    rl.account(1e12);
    expect(rl.exceeded()).toBe(false);
  });
});

describe('convergence', () => {
  it('derives bandwidth, threshold, mbps and expected downtime like migration_update_counters', () => {
    const c = new ConvergenceEstimator(300, 0);
    expect(
      c.update({
        now: 50,
        totalBytes: 1e6,
        totalPages: 10,
        downtimeLimitMs: 300,
        remainingAtSync: 0,
        dirtyPagesRate: 0,
      }),
    ).toBe(false);
    expect(c.expectedDowntime).toBe(300);
    c.update({
      now: 200,
      totalBytes: 20e6,
      totalPages: 4882,
      downtimeLimitMs: 300,
      remainingAtSync: 10e6,
      dirtyPagesRate: 100,
    });
    expect(c.bandwidth).toBeCloseTo(100_000); // bytes per ms
    expect(c.thresholdSize).toBeCloseTo(30e6);
    expect(c.mbps).toBeCloseTo(800);
    expect(c.expectedDowntime).toBeCloseTo(100);
    expect(c.shouldIterate(31e6)).toBe(true);
    expect(c.shouldIterate(29e6)).toBe(false);
    expect(c.shouldIterate(0)).toBe(false);
  });
});

describe('auto-converge', () => {
  const p = {
    'throttle-trigger-threshold': 50,
    'cpu-throttle-initial': 20,
    'cpu-throttle-increment': 10,
    'cpu-throttle-tailslow': false,
    'max-cpu-throttle': 99,
  };
  it('starts at the initial percentage after two high periods, then steps up to the cap', () => {
    const a = new AutoConverge();
    expect(a.onPeriod(60, 100, p)).toBe(0);
    expect(a.onPeriod(10, 100, p)).toBe(0); // a low period does not reset the count
    expect(a.onPeriod(60, 100, p)).toBe(20);
    a.onPeriod(60, 100, p);
    expect(a.onPeriod(60, 100, p)).toBe(30);
    for (let i = 0; i < 40; i++) a.onPeriod(60, 100, p);
    expect(a.percentage).toBe(99);
  });

  it('with tailslow steps by what brings the dirty rate to the threshold', () => {
    const a = new AutoConverge();
    a.percentage = 50;
    a.onPeriod(55, 100, { ...p, 'cpu-throttle-tailslow': true });
    expect(a.onPeriod(55, 100, { ...p, 'cpu-throttle-tailslow': true })).toBe(54); // 50 − 50·(50/55) = 4.5 → 4
  });

  it('sleeps pct/(1−pct) × 10 ms per 10 ms slice', () => {
    expect(throttleSleepMs(0)).toBe(0);
    expect(throttleSleepMs(50)).toBeCloseTo(10);
    expect(throttleSleepMs(99)).toBeCloseTo(990);
  });
});

describe('query-migrate', () => {
  const base = {
    now: 1000,
    startTime: 0,
    setupTime: 3,
    expectedDowntime: 300,
    ram: emptyRamStats(),
    throttlePercentage: 0,
  };
  it('shows only the status in setup and cancelled, the reason when failed', () => {
    expect(buildQueryMigrate({ ...base, status: 'setup' })).toEqual({ status: 'setup' });
    expect(buildQueryMigrate({ ...base, status: 'failed', error: 'boom' })).toEqual({
      status: 'failed',
      'error-desc': 'boom',
    });
    expect(buildQueryMigrate({ ...base, status: 'none' })).toEqual({});
  });
  it('shows expected-downtime while active and downtime once completed', () => {
    const a = buildQueryMigrate({ ...base, status: 'active' });
    expect(a).toMatchObject({ status: 'active', 'total-time': 1000, 'expected-downtime': 300, 'setup-time': 3 });
    expect(a.downtime).toBeUndefined();
    const c = buildQueryMigrate({ ...base, status: 'completed', totalTime: 900, downtime: 12, throttlePercentage: 30 });
    expect(c).toMatchObject({ status: 'completed', 'total-time': 900, downtime: 12, 'cpu-throttle-percentage': 30 });
    expect(c['expected-downtime']).toBeUndefined();
    expect(Object.keys(c.ram ?? {})).toContain('dirty-sync-missed-zero-copy');
  });
});
