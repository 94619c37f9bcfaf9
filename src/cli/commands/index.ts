import { inspectCommand } from './inspect.ts';
import { lockCommand } from './lock.ts';
import { packCommand } from './pack.ts';
import { pushCommand } from './push.ts';
import { verifyCommand } from './verify.ts';
import { discoverCommand } from './discover.ts';
import { serveCommand } from './serve.ts';
import { exportCommand } from './export.ts';
import { mirrorsConfigCommand } from './mirrors-config.ts';
import type { Command } from './types.ts';

export type { Command } from './types.ts';
export const commands: Command[] = [discoverCommand, lockCommand, packCommand, verifyCommand, inspectCommand, pushCommand, serveCommand, exportCommand, mirrorsConfigCommand];
