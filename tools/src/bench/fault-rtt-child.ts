/**
 * Child process of `faultRttProcess`: `node fault-rtt-child.js BACKEND PAGES DELIVERY` prints one
 * JSON FaultRtt on stdout.
 */
import type { BackendName } from '@e2k-migrate/native';
import { type FaultDelivery, faultRtt } from './fault-rtt.js';

const [backend, pages, delivery] = process.argv.slice(2);
const r = await faultRtt(backend as BackendName, Number(pages), 'anonymous', delivery as FaultDelivery);
process.stdout.write(`${JSON.stringify(r)}\n`);
