export * from './errors.js';
export * from './page-bitmap.js';
export * from './xbzrle-cache.js';
