// The library's errors speak of options ("the key", "a volume size", "mark HOST insecure"), since a
// library caller has no flags; on the command line the flag a user typed says it better. Each rule
// restates one phrase of one error code in flag terms, so CLI messages keep naming flags.
import { AirlockError } from '../core/errors.ts';

type Values = Record<string, unknown>;

interface Rule {
  /** The error codes the rule applies to (undefined: any code). */
  codes?: readonly string[];
  field: 'message' | 'hint';
  match: RegExp;
  /** A replacement pattern ($1…), or the text from the match and the command's parsed flags. */
  to: string | ((m: RegExpExecArray, values: Values) => string);
}

const raw = (v: unknown): string => (typeof v === 'string' ? v : String(v));

const RULES: readonly Rule[] = [
  { codes: ['CONCURRENCY_INVALID'], field: 'message', match: /^concurrency must be (.*), got .*$/s, to: (m, v) => `--concurrency must be ${m[1]}, got "${raw(v.concurrency)}"` },
  { codes: ['SPLIT_INVALID'], field: 'message', match: /^volume size/, to: '--split' },
  { codes: ['PARITY_INVALID'], field: 'message', match: /^recovery volumes must be (.*), got .*$/s, to: (m, v) => `--parity must be ${m[1]}, got "${raw(v.parity)}"` },
  { codes: ['PARITY_WITHOUT_SPLIT'], field: 'message', match: /^.*$/s, to: '--parity needs --split: recovery volumes rebuild lost volumes' },
  { codes: ['PARITY_WITHOUT_SPLIT'], field: 'hint', match: /^.*$/s, to: 'e.g. --split 4GiB --parity 2' },
  { codes: ['KEY_EXISTS'], field: 'hint', match: /ask for the files to be replaced/, to: 'pass --force to replace it' },
  { codes: ['KEY_PASSPHRASE_MISSING'], field: 'hint', match: /^give the passphrase, or set/, to: 'give it with --passphrase-file FILE or' },
  { codes: ['KEY_WRONG_TYPE'], field: 'hint', match: /the \.pub is for verifying$/, to: 'the .pub is for verify --key' },
  { codes: ['SPEC_NOT_FOUND'], field: 'hint', match: /name another spec file/, to: 'pass -f FILE' },
  { codes: ['LOCK_MISSING', 'LOCK_STALE'], field: 'hint', match: /pack with relock/, to: '`airlock pack --lock`' },
  { codes: ['SIGNATURE_MISSING'], field: 'message', match: /and the key (.*) demands a signature/s, to: 'and --key $1 demands a signature' },
  { codes: ['SIGNATURE_MISSING'], field: 'hint', match: /^.*$/s, to: 'pack it with `airlock pack --sign NAME.key`, or leave out --key' },
  { codes: ['SIGNATURE_INVALID'], field: 'hint', match: /verify it with the key/, to: 'run `airlock verify --key NAME.pub` on it' },
  { codes: ['NOT_SPLIT'], field: 'hint', match: /^.*$/s, to: 'repair works on bundles written with `airlock pack --split SIZE --parity N`' },
  { codes: ['REPAIR_IMPOSSIBLE'], field: 'hint', match: /packed without recovery volumes$/, to: 'packed without recovery volumes (pack --parity N)' },
  { codes: ['VOLUMES_MIXED'], field: 'hint', match: /^.*$/s, to: 'volumes of one bundle are written together by `airlock pack --split`' },
  { codes: ['LISTEN_INVALID'], field: 'message', match: /^invalid listen address/, to: 'invalid --listen' },
  { codes: ['PREFIX_INVALID'], field: 'message', match: /^invalid prefix/, to: 'invalid --prefix' },
  { codes: ['TLS_INVALID'], field: 'message', match: /^a TLS certificate and its key go together$/, to: '--tls-cert and --tls-key go together' },
  { codes: ['TLS_INVALID'], field: 'hint', match: /^give both/, to: 'pass both' },
  { codes: ['ADDRESS_IN_USE'], field: 'hint', match: /e\.g\. (\S+), or (\S+) for any free port/, to: 'e.g. --listen $1, or --listen $2 for any free port' },
  { codes: ['ADDRESS_DENIED'], field: 'hint', match: /e\.g\. :5000/, to: 'e.g. --listen :5000' },
  { codes: ['CIDR_INVALID'], field: 'message', match: /^internal CIDR/, to: '--internal-cidr' },
  { codes: ['CIDR_INVALID'], field: 'hint', match: /^e\.g\. (\S+) or (\S+)$/, to: 'e.g. --internal-cidr $1 or --internal-cidr $2' },
  { codes: ['CIDR_INVALID'], field: 'message', match: /^allowed CIDR/, to: '--allow-cidr' },
  { codes: ['DOMAIN_INVALID'], field: 'message', match: /^internal domain/, to: '--internal-domain' },
  { codes: ['DOMAIN_INVALID'], field: 'hint', match: /^e\.g\. /, to: 'e.g. --internal-domain ' },
  { codes: ['FAIL_ON_INVALID'], field: 'message', match: /^failOn/, to: '--fail-on' },
  { codes: ['SET_INVALID'], field: 'message', match: /^set value/, to: '--set' },
  { codes: ['SET_INVALID'], field: 'hint', match: /e\.g\. /, to: 'e.g. --set ' },
  { codes: ['VALUES_WITHOUT_CHART'], field: 'message', match: /^values files and set values/, to: '-f/--set/--set-string' },
  { codes: ['VALUES_WITHOUT_CHART'], field: 'hint', match: /leave out the values$/, to: 'leave out the values flags' },
  { codes: ['SPEC_NO_LOCAL_CHARTS'], field: 'hint', match: /^.*$/s, to: 'pass charts, kustomize directories or manifests: airlock discover ./charts/shop -f values.yaml' },
  { codes: ['TLS_FILE_INVALID'], field: 'hint', match: /^check the CA file/, to: 'check --ca-file' },
  { codes: ['INSECURE_BASIC_AUTH'], field: 'hint', match: /with a CA file/, to: 'with --ca-file' },
  { codes: ['PLAIN_HTTP_REFUSED', 'TLS_PLAIN_HTTP'], field: 'hint', match: /mark (\S+) insecure/, to: 'pass --plain-http=$1' },
  {
    codes: ['TLS_UNTRUSTED'],
    field: 'hint',
    match: /^trust the CA that signed it \(a CA file, or (<dir>\/(\S+)\/ca\.crt) in a certs\.d dir\); marking \S+ insecure skips/,
    to: 'pass --ca-file <ca.pem> with the CA that signed it, or put that CA in a certs.d dir as $1; --insecure=$2 skips',
  },
  { field: 'hint', match: /lower the concurrency/, to: 'lower --concurrency' },
  { codes: ['DELTA_BASE_MISSING'], field: 'hint', match: /\(not a delta\)/, to: '(without --since)' },
  { codes: ['MIRRORS_INVALID'], field: 'message', match: /^a CA file is for HTTPS/, to: '--ca-file is for HTTPS' },
  { codes: ['MIRRORS_INVALID'], field: 'hint', match: /drop the CA file/, to: 'drop --ca-file' },
  { codes: ['MIRRORS_INVALID'], field: 'message', match: /^plain HTTP contradicts the https:\/\/ of .*$/s, to: '--plain-http contradicts the https:// of --registry' },
  { codes: ['MIRRORS_INVALID'], field: 'message', match: /give an output directory/, to: 'pass -o DIR' },
  {
    codes: ['MIRRORS_PREFIX_UNSUPPORTED'],
    field: 'hint',
    match: /\((\S+): serve answers mirror requests by original name whatever prefix it serves under\); or use the k3s format/,
    to: '(--registry $1: serve answers mirror requests by original name whatever its --prefix); or use --format k3s',
  },
  { codes: ['TOOL_PLATFORM_INVALID'], field: 'message', match: /^tool platforms: /, to: '--tools-platform: ' },
  { codes: ['TOOL_PLATFORM_INVALID'], field: 'message', match: /name the tool platforms to carry$/, to: 'pass --tools-platform linux/amd64 or linux/arm64' },
  { codes: ['TOOL_NOT_FOUND', 'TOOL_NOT_PINNED'], field: 'message', match: /^the tools helm/, to: '--tools-helm' },
  { codes: ['TOOL_NOT_FOUND'], field: 'hint', match: /name the pinned helm for the tools$/, to: 'pass --tools-helm PATH' },
  { codes: ['HELM_NOT_FOUND', 'KUBECTL_NOT_FOUND'], field: 'message', match: /\(from the (helm|kubectl) option\)/, to: '(from --$1)' },
  { codes: ['HELM_NOT_FOUND', 'KUBECTL_NOT_FOUND'], field: 'hint', match: /name the (helm|kubectl) binary/, to: 'pass --$1 /path/to/$1' },
];

/** `e` with its message and hint restated in flag terms (the same error object). */
export function inFlagTerms(e: unknown, values: Values): unknown {
  if (!(e instanceof AirlockError)) return e;
  let message = e.message;
  let hint = e.hint;
  for (const rule of RULES) {
    if (rule.codes && !rule.codes.includes(e.code)) continue;
    const text = rule.field === 'message' ? message : hint;
    if (text === undefined) continue;
    const m = rule.match.exec(text);
    if (!m) continue;
    const to = rule.to;
    const next = typeof to === 'string' ? text.replace(rule.match, to) : text.replace(rule.match, () => to(m, values));
    if (rule.field === 'message') message = next;
    else hint = next;
  }
  // The boundary owns the error now: restate it in place, keeping its class, code and cause.
  (e as { message: string }).message = message;
  (e as { hint: string | undefined }).hint = hint;
  return e;
}
