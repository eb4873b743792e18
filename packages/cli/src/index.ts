export { main } from './main.js';
export type { Command, CommandContext, OptionSpec } from './command.js';
export { UsageError } from './command.js';
