import { inspectCommand } from './inspect.ts';
import { lockCommand } from './lock.ts';
import { packCommand } from './pack.ts';
import { pushCommand } from './push.ts';
import { verifyCommand } from './verify.ts';
import type { Command } from './types.ts';

export type { Command } from './types.ts';
export const commands: Command[] = [lockCommand, packCommand, verifyCommand, inspectCommand, pushCommand];
