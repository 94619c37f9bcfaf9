import type { ParseArgsConfig } from 'node:util';
import type { Output } from '../output.ts';

export interface CommandContext {
  values: Record<string, unknown>;
  positionals: string[];
  out: Output;
  signal: AbortSignal;
}

export interface Command {
  name: string;
  summary: string;
  usage: string;
  options: NonNullable<ParseArgsConfig['options']>;
  /** Optional: rewrite the raw arguments before parsing (a flag whose value may be left out, like `--write`). */
  preprocessArgs?(args: string[]): string[];
  /** Returns an exit code, or nothing for success. Throws typed errors. */
  run(ctx: CommandContext): Promise<number | void>;
}
