// The sandbox's helper process, started inside the sandbox namespace by `ip netns exec … node
// ns-helper.ts CONFIG` (or the executable in its internal mode, src/util/executable.ts): the DNS
// sink on 127.0.0.1:53 (UDP and TCP) and one TCP listener per --allow entry that forwards to a
// unix socket the parent serves in the host namespace (unix sockets live in the filesystem, not in
// a network namespace: that is the only way out, and it leads exactly where the user allowed).
// Events go to stdout as JSON lines; the helper exits when its stdin closes, so it never outlives
// airlock.
import { createSocket } from 'node:dgram';
import { connect, createServer, type Server, type Socket } from 'node:net';
import { buildResponse, parseQuery, typeName } from './dns-wire.ts';
import { SinkAnswers, type DnsMode } from './sink-answers.ts';

export interface HelperConfig {
  mode: DnsMode;
  /** Names (lowercase) the DNS sink answers with an allowed address. */
  allowedNames: [string, string][];
  /** One forwarder per allow entry, in order: listen on an ephemeral port, forward to `socket`. */
  forwarders: { socket: string }[];
}

export type HelperEvent =
  | { t: 'ready'; ports: number[] }
  | { t: 'dns'; name: string; type: string; answer: string; allowed: boolean; proto: 'udp' | 'tcp' }
  | { t: 'allow'; index: number }
  | { t: 'error'; message: string };

function emit(e: HelperEvent): void {
  process.stdout.write(`${JSON.stringify(e)}\n`);
}

function answerText(d: ReturnType<SinkAnswers['decide']>): string {
  return typeof d.answer === 'object' ? d.answer.a : d.answer.toUpperCase();
}

async function main(configText: string | undefined): Promise<void> {
  const config = JSON.parse(configText ?? '{}') as HelperConfig;
  const sink = new SinkAnswers(config.mode, new Map(config.allowedNames));
  const respond = (msg: Uint8Array, proto: 'udp' | 'tcp'): Uint8Array | undefined => {
    const q = parseQuery(msg);
    if (!q) return undefined;
    const d = sink.decide(q);
    emit({ t: 'dns', name: q.name, type: typeName(q.qtype), answer: answerText(d), allowed: d.allowed, proto });
    return buildResponse(q, d.answer);
  };

  const udp = createSocket('udp4');
  udp.on('message', (msg, rinfo) => {
    const out = respond(msg, 'udp');
    if (out) udp.send(out, rinfo.port, rinfo.address);
  });
  await new Promise<void>((resolve, reject) => {
    udp.once('error', reject);
    udp.bind(53, '127.0.0.1', () => resolve());
  });

  const tcp = createServer((s) => {
    let buf = Buffer.alloc(0);
    s.on('data', (d: Buffer) => {
      buf = Buffer.concat([buf, d]);
      while (buf.length >= 2 && buf.length >= 2 + buf.readUInt16BE(0)) {
        const len = buf.readUInt16BE(0);
        const out = respond(buf.subarray(2, 2 + len), 'tcp');
        buf = buf.subarray(2 + len);
        if (out) s.write(Buffer.concat([Buffer.from([out.length >> 8, out.length & 0xff]), out]));
      }
      if (buf.length > 70_000) s.destroy();
    });
    s.on('error', () => s.destroy());
    s.setTimeout(10_000, () => s.destroy());
  });
  await listen(tcp, { port: 53, host: '127.0.0.1' });

  const ports: number[] = [];
  for (const [index, f] of config.forwarders.entries()) {
    const server = createServer((inbound: Socket) => {
      emit({ t: 'allow', index });
      const outbound = connect(f.socket);
      inbound.pipe(outbound);
      outbound.pipe(inbound);
      const close = (): void => {
        inbound.destroy();
        outbound.destroy();
      };
      inbound.on('error', close);
      outbound.on('error', close);
      inbound.on('close', close);
      outbound.on('close', close);
    });
    // Dual-stack on every local address: nftables redirects both IPv4 and IPv6 here.
    await listen(server, { port: 0, host: '::', ipv6Only: false });
    const addr = server.address();
    ports.push(typeof addr === 'object' && addr !== null ? addr.port : 0);
  }
  emit({ t: 'ready', ports });
  process.stdin.resume();
  process.stdin.on('end', () => process.exit(0));
  process.stdin.on('close', () => process.exit(0));
}

function listen(server: Server, opts: { port: number; host: string; ipv6Only?: boolean }): Promise<void> {
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(opts, () => resolve());
  });
}

/** The helper process's whole life; `config` is the HelperConfig JSON its parent passed. */
export function nsHelperMain(config: string | undefined): void {
  main(config).catch((e: unknown) => {
    emit({ t: 'error', message: (e as Error).message });
    process.exit(1);
  });
}

// Started as a script (the sources, dist/); the executable calls nsHelperMain (src/cli/exe-main.ts).
if (import.meta.main) nsHelperMain(process.argv[2]);
