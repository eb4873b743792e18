export * from './codec.js';
export * from './cursor.js';
export * from './errors.js';
export * from './schema.js';
export * from './vmdesc.js';
export type * from './vmdesc-types.js';
