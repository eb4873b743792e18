export * from './capabilities.js';
export * from './fixtures.js';
export * from './tcp-proxy.js';
