// The source side: page requests, discard, preempt channel, recovery (see ../../README.md).
export * from './discard.js';
export * from './errors.js';
export * from './page-request-queue.js';
export * from './postcopy-ram-source.js';
export * from './recv-bitmap.js';
export * from './store-source.js';
