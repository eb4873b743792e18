export * from './analyze/index.js';
export * from './core/index.js';
export * from './errors.js';
export * from './store/index.js';
export * from './stream/index.js';
export * from './wire/index.js';
