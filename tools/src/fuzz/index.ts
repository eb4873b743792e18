import type { FuzzTarget } from './fuzz.js';
import { receiveTarget } from './receive.js';
import { returnPathTarget } from './return-path.js';
import { streamTarget } from './stream.js';

/** Every fuzz target; each lives in its own file and is registered here. */
export const targets: FuzzTarget[] = [streamTarget, receiveTarget, returnPathTarget];
