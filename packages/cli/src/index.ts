export type { Command, CommandContext, OptionSpec } from './command.js';
export { UsageError } from './command.js';
export { main } from './main.js';
export { E2K_MIGRATE_BIN, type VmExit, VmProcess, type VmProcessOptions } from './vm-process.js';
