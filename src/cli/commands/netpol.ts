import { UsageError } from '../../core/errors.ts';
import { netpol } from '../../api/netpol.ts';
import { renderOptionsOf, renderOptions, renderUsage } from './render-flags.ts';
import { defineCommand } from './types.ts';

export const netpolCommand = defineCommand({
  name: 'netpol',
  summary: 'write NetworkPolicies that deny egress except DNS, the cluster and the CIDRs given',
  usage: `Usage: airlock netpol CHART|DIR|FILE... [-f values.yaml]... [--allow-cidr C[:PORT]]... [-o FILE]

Writes NetworkPolicies (YAML, ready for kubectl apply -f) for every namespace the rendered app uses:
  airlock-default-deny-egress    podSelector {}, policyTypes [Egress]: no egress at all, then
  airlock-allow-dns              to kube-dns in kube-system (k8s-app: kube-dns), UDP and TCP 53
  airlock-allow-same-namespace   to every pod in the namespace
  airlock-allow-cluster          to every pod in every namespace (namespaceSelector {})
  airlock-allow-cidrs            to each --allow-cidr block (and port)
kube-system, kube-public and kube-node-lease get no policy (a warning says so).

Options:
      --allow-cidr C[:PORT[-END]][/udp]   also allow this block (repeatable): 10.20.0.0/16,
                            10.20.0.5/32:5432, 10.0.0.0/8:8000-8100, [fd00::1]:443, fd00::/8:443/udp
  -o, --output FILE         write the YAML to FILE instead of stdout
      --json                NDJSON: a result line {"type":"result","namespaces":[...],"policies":[...]}
${renderUsage}`,
  options: {
    ...renderOptions,
    'allow-cidr': { type: 'string', multiple: true },
    output: { type: 'string', short: 'o' },
  },
  async run({ values, positionals, out, signal }) {
    if (positionals.length === 0) {
      throw new UsageError('netpol needs at least one chart, kustomize directory or manifest file', { hint: 'e.g. airlock netpol ./charts/shop --allow-cidr 10.20.0.0/16:5432' });
    }
    const allowCidrs = Array.isArray(values['allow-cidr']) ? (values['allow-cidr'] as string[]) : [];
    const r = await netpol(positionals, { ...renderOptionsOf(values), allowCidrs, output: values.output as string | undefined, signal });
    for (const w of r.warnings) out.info(`warning: ${w}`);
    for (const p of r.problems) out.info(`warning: ${p.file} ${p.where} does not parse (${p.message}); its namespace may be missing`);
    if (r.namespaces.length === 0) out.info('no namespace to protect: the app uses only system namespaces');
    if (r.file !== undefined) {
      out.info(`wrote ${r.policies.length} NetworkPolicies for ${r.namespaces.join(', ') || 'no namespace'} to ${values.output}`);
    }
    out.data({ namespaces: r.namespaces, skipped: r.skipped, policies: r.policies }, typeof values.output === 'string' ? '' : r.yaml);
  },
});
