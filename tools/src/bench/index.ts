import type { Bench } from './bench.js';

/** Every benchmark suite; each lives in its own file and is registered here. */
export const benches: Bench[] = [];
