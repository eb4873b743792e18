export type { Command, CommandContext, OptionSpec } from './command.js';
export { UsageError } from './command.js';
export { main } from './main.js';
