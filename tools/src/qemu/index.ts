/**
 * QEMU 7.2 harness for interop tests and benchmarks: start/stop qemu-system-x86_64 (always by
 * PID), drive it over QMP, read its RAM and serial port, check the boot-sector guest's invariant,
 * run the e2k-migrate CLI, and migrate QEMU → QEMU as the benchmarks' reference.
 */
export * from './boot-guest.js';
export * from './e2k-cli.js';
export * from './migration-control.js';
export * from './qemu-process.js';
export * from './qemu-to-qemu.js';
export * from './rate-guest.js';
