import { analyzeBench } from './analyze.js';
import type { Bench } from './bench.js';
import { e2kBench } from './e2k.js';
import { nativeBench } from './native.js';
import { postcopyBench } from './postcopy.js';
import { precopyBench } from './precopy.js';
import { transportsBench } from './transports.js';

/** Every benchmark suite; each lives in its own file and is registered here. */
export const benches: Bench[] = [analyzeBench, nativeBench, e2kBench, transportsBench, precopyBench, postcopyBench];
