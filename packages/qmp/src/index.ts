/**
 * @e2k-migrate/qmp — QMP (QEMU Machine Protocol): the server a VM process exposes and the client
 * tools use, over unix sockets and tcp.
 */
export * from './address.js';
export * from './client.js';
export * from './commands.js';
export * from './errors.js';
export * from './json-splitter.js';
export * from './protocol.js';
export * from './server.js';
export * from './session.js';
