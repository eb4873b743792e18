import type { Command } from '../command.js';
import { analyzeCommand } from './analyze.js';
import { demoCommand } from './demo.js';
import { doctorCommand } from './doctor.js';
import { incomingCommand } from './incoming.js';
import { migrateCommand } from './migrate.js';
import { saveCommand } from './save.js';
import { sendCommand } from './send.js';
import { vmCommand } from './vm.js';

/**
 * Every subcommand, in the order `e2k-migrate --help` lists them.
 * Each lives in its own file under commands/ and is registered here.
 */
export const commands: Command[] = [
  analyzeCommand,
  vmCommand,
  migrateCommand,
  saveCommand,
  demoCommand,
  incomingCommand,
  sendCommand,
  doctorCommand,
];
