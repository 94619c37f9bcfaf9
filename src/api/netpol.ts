// netpol: NetworkPolicies that deny egress except DNS, the cluster and the CIDR blocks given.
import { resolve } from 'node:path';
import { netpolForInputs, type NetpolResult, type NetworkPolicy } from '../audit/netpol.ts';
import { writeFileAtomic } from '../util/atomic-file.ts';
import { renderSettings, type BaseOptions, type RenderOptions } from './options.ts';

export type { NetpolResult, NetworkPolicy };

export interface NetpolOptions extends BaseOptions, RenderOptions {
  /** Also allow these blocks: `10.20.0.0/16`, `10.20.0.5/32:5432`, `10.0.0.0/8:8000-8100`, `fd00::/8:443/udp`. */
  allowCidrs?: string[] | undefined;
  /** Write the policies (YAML, ready for kubectl apply -f) to this file, atomically. */
  output?: string | undefined;
}

export interface NetpolReport extends NetpolResult {
  /** The file written (absolute), when `output` was given. */
  file?: string;
}

/** Policies for every namespace the rendered app (charts, kustomize directories, manifests) uses. */
export async function netpol(inputs: string | readonly string[], options: NetpolOptions = {}): Promise<NetpolReport> {
  const r = await netpolForInputs({ ...renderSettings(options), inputs: typeof inputs === 'string' ? [inputs] : [...inputs], allowCidrs: options.allowCidrs ?? [] });
  if (options.output === undefined) return r;
  const file = resolve(options.output);
  await writeFileAtomic(file, r.yaml, { signal: options.signal });
  return { ...r, file };
}
