// `--allow HOST:PORT`: the endpoints a sandboxed program may reach. Inside the namespace the
// helper listens for them (nftables redirects HOST:PORT there); it forwards over a unix socket to
// a forwarder here, in the host namespace, which connects to HOST:PORT. So a test registry on the
// host's 127.0.0.1 is reachable as 127.0.0.1:PORT from inside, and nothing else is.
import { createConnection, createServer, type Server, type Socket } from 'node:net';
import { join } from 'node:path';
import { UsageError } from '../../core/errors.ts';
import { isHostname } from '../endpoints.ts';
import { parseIpv4, parseIpv6 } from '../ip.ts';

export interface AllowEntry {
  /** As given (for the report). */
  text: string;
  /** Lowercase name or IP address (IPv6 without brackets). */
  host: string;
  port: number;
  kind: 'ipv4' | 'ipv6' | 'name' | 'localhost';
}

export function parseAllow(text: string): AllowEntry {
  const bad = (why: string): UsageError =>
    new UsageError(`--allow ${JSON.stringify(text)}: ${why}`, { code: 'ALLOW_INVALID', hint: 'write HOST:PORT, e.g. --allow 127.0.0.1:5000, --allow registry.corp.example:443, --allow [fd00::1]:443' });
  const m = /^\[([^\]]+)\]:([0-9]{1,5})$/.exec(text) ?? /^([^:[\]]+):([0-9]{1,5})$/.exec(text);
  if (!m) throw bad('not HOST:PORT');
  const port = Number(m[2]);
  if (port < 1 || port > 65535) throw bad(`port ${port} is outside 1-65535`);
  const host = m[1]!.toLowerCase().replace(/\.$/, '');
  if (parseIpv4(host)) return { text, host, port, kind: 'ipv4' };
  if (parseIpv6(host)) return { text, host, port, kind: 'ipv6' };
  if (host === 'localhost') return { text, host, port, kind: 'localhost' };
  if (!isHostname(host) && !/^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$/.test(host)) throw bad(`${host} is neither an IP address nor a host name`);
  return { text, host, port, kind: 'name' };
}

export interface HostForwarders {
  sockets: string[];
  /** Connections made per allow entry. */
  counts: number[];
  close(): Promise<void>;
}

/** One unix-socket server per entry in `dir`; each connection is carried to the entry's HOST:PORT. */
export async function startHostForwarders(entries: readonly AllowEntry[], dir: string): Promise<HostForwarders> {
  const servers: Server[] = [];
  const open = new Set<Socket>();
  const counts = entries.map(() => 0);
  const sockets: string[] = [];
  try {
    for (const [i, e] of entries.entries()) {
      const path = join(dir, `allow-${i}.sock`);
      const server = createServer((inbound) => {
        counts[i]!++;
        const outbound = createConnection({ host: e.host, port: e.port });
        open.add(inbound);
        open.add(outbound);
        inbound.pipe(outbound);
        outbound.pipe(inbound);
        const close = (): void => {
          inbound.destroy();
          outbound.destroy();
          open.delete(inbound);
          open.delete(outbound);
        };
        for (const s of [inbound, outbound]) {
          s.on('error', close);
          s.on('close', close);
        }
      });
      await new Promise<void>((resolve, reject) => {
        server.once('error', reject);
        server.listen(path, () => resolve());
      });
      servers.push(server);
      sockets.push(path);
    }
  } catch (e) {
    for (const s of servers) s.close();
    throw e;
  }
  return {
    sockets,
    counts,
    async close() {
      for (const s of open) s.destroy();
      await Promise.all(servers.map((s) => new Promise<void>((r) => s.close(() => r()))));
    },
  };
}
