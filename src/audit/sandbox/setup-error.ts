import { AirlockError } from '../../core/errors.ts';

/** The sandbox could not be built or read back: the machine, not the user's command, is at fault. */
export class SetupError extends AirlockError {
  constructor(message: string, hint?: string) {
    super('SANDBOX_SETUP', 'internal', message, hint ? { hint } : {});
  }
}
