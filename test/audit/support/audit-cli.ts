// `airlock audit` as the audit tests run it: in the audit fixtures folder, with the pinned helm
// (CI has no helm on PATH).
import { fileURLToPath } from 'node:url';
import { airlock, type CliResult } from '../../helpers/cli.ts';
import { helmPath } from '../../helpers/helm.ts';

export const AUDIT_FIXTURES = fileURLToPath(new URL('../../fixtures/audit/', import.meta.url));

export function auditCli(args: string[]): Promise<CliResult> {
  return airlock(['audit', '--helm', helmPath(), ...args], { cwd: AUDIT_FIXTURES, timeoutMs: 60_000 });
}
