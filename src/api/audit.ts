// audit: every external endpoint and phone-home setting in charts, kustomize directories and manifests.
import { UsageError } from '../core/errors.ts';
import { auditInputs, type AuditResult } from '../audit/audit.ts';
import { reachesFailOn } from '../audit/findings.ts';
import { isSeverity, SEVERITIES, type AuditFinding, type InternalEndpoint, type Severity } from '../audit/types.ts';
import { renderSettings, type BaseOptions, type RenderOptions } from './options.ts';

export type { AuditFinding, InternalEndpoint, Severity };

export interface AuditOptions extends BaseOptions, RenderOptions {
  /** Names under these domains are internal (e.g. `corp.example`). */
  internalDomains?: string[] | undefined;
  /** Addresses in these CIDR blocks are internal (e.g. `203.0.113.0/24`). */
  internalCidrs?: string[] | undefined;
  /** `failed` is true when a finding is this severe or worse (default `low`; `none`: never). */
  failOn?: Severity | 'none' | undefined;
}

export interface AuditReport extends AuditResult {
  failOn: Severity | 'none';
  /** Some finding reaches `failOn`. */
  failed: boolean;
}

/** Render or read the inputs and list every endpoint the app talks to that is not internal, worst first. */
export async function audit(inputs: string | readonly string[], options: AuditOptions = {}): Promise<AuditReport> {
  const failOn = options.failOn ?? 'low';
  if (failOn !== 'none' && !isSeverity(failOn)) {
    throw new UsageError(`failOn must be one of ${SEVERITIES.join(', ')}, none; got "${String(failOn)}"`, { code: 'FAIL_ON_INVALID' });
  }
  const result = await auditInputs({
    ...renderSettings(options),
    inputs: typeof inputs === 'string' ? [inputs] : [...inputs],
    internalDomains: options.internalDomains ?? [],
    internalCidrs: options.internalCidrs ?? [],
  });
  return { ...result, failOn, failed: reachesFailOn(result.findings, failOn) };
}
