export * from './capabilities.js';
export * from './fixtures.js';
