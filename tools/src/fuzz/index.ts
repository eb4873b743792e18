import type { FuzzTarget } from './fuzz.js';

/** Every fuzz target; each lives in its own file and is registered here. */
export const targets: FuzzTarget[] = [];
