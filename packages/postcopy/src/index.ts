export * from './dest/index.js';
export * from './source/index.js';
