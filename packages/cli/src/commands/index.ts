import type { Command } from '../command.js';

/**
 * Every subcommand, in the order `e2k-migrate --help` lists them.
 * Each lives in its own file under commands/ and is registered here.
 */
export const commands: Command[] = [];
