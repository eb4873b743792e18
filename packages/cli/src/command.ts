import type { ParseArgsConfig } from 'node:util';

export type OptionSpec = NonNullable<ParseArgsConfig['options']>[string] & {
  /** One line for --help. */
  help: string;
  /** Placeholder shown in --help, e.g. FILE. */
  arg?: string;
};

export interface CommandContext {
  /** Parsed option values. */
  values: Record<string, string | boolean | (string | boolean)[] | undefined>;
  positionals: string[];
  /** Where machine output goes (exactly one JSON value with --json). */
  stdout: NodeJS.WritableStream;
  /** Progress, logs and human messages. */
  stderr: NodeJS.WritableStream;
}

/** One `e2k-migrate` subcommand: thin, parses arguments and calls the packages. */
export interface Command {
  name: string;
  /** One line for the command list. */
  summary: string;
  /** Usage synopsis after `e2k-migrate NAME`. */
  usage: string;
  /** Paragraphs that teach: what it does, examples. */
  description: string;
  options: Record<string, OptionSpec>;
  allowPositionals?: boolean;
  /** Returns the process exit status. */
  run(ctx: CommandContext): Promise<number>;
}

/** A usage error: the command line is wrong (exit status 2). */
export class UsageError extends Error {
  readonly code = 'E_USAGE';
  constructor(message: string) {
    super(message);
    this.name = 'UsageError';
  }
}
