import type { ParseArgsConfig } from 'node:util';
import { inFlagTerms } from '../flag-terms.ts';
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

/** A command whose library errors name the flags the user typed (see flag-terms.ts). */
export function defineCommand(command: Command): Command {
  const run = command.run.bind(command);
  return {
    ...command,
    async run(ctx) {
      try {
        return await run(ctx);
      } catch (e) {
        throw inFlagTerms(e, ctx.values);
      }
    },
  };
}
