// A loopback TCP relay that counts the bytes it carries each way and, once, cuts the connection
// that carries byte N of one direction (both sockets destroyed mid-stream, as a reset does).
import { createServer, connect, type Server, type Socket } from 'node:net';
import type { AddressInfo } from 'node:net';

export interface CuttingRelay {
  /** host:port of the relay. */
  host: string;
  /** Bytes carried so far, client → server (requests) and server → client (responses). */
  readonly up: number;
  readonly down: number;
  /** Whether the cut has happened. */
  readonly cut: boolean;
  close(): Promise<void>;
}

/** Relay to `target` (host:port); cut once after `after` bytes of `direction`. */
export async function startCuttingRelay(target: string, opts: { direction: 'up' | 'down'; after: number }): Promise<CuttingRelay> {
  const [host, port] = [target.slice(0, target.lastIndexOf(':')), Number(target.slice(target.lastIndexOf(':') + 1))];
  const state = { up: 0, down: 0, cut: false };
  const sockets = new Set<Socket>();
  const server: Server = createServer((client) => {
    const upstream = connect({ host, port });
    // The connection that was cut carries nothing more, whatever is still arriving.
    let dead = false;
    for (const s of [client, upstream]) {
      sockets.add(s);
      s.on('close', () => sockets.delete(s));
      s.on('error', () => {});
    }
    const pipe = (from: Socket, to: Socket, direction: 'up' | 'down'): void => {
      from.on('data', (chunk: Buffer) => {
        if (dead) return;
        let data = chunk;
        if (!state.cut && direction === opts.direction && state[direction] + data.length >= opts.after) {
          // Forward up to byte N, then reset both sides.
          data = data.subarray(0, opts.after - state[direction]);
          state[direction] += data.length;
          state.cut = true;
          dead = true;
          to.write(data, () => {
            client.resetAndDestroy();
            upstream.resetAndDestroy();
          });
          return;
        }
        state[direction] += data.length;
        if (!to.write(data)) {
          from.pause();
          to.once('drain', () => from.resume());
        }
      });
      from.on('end', () => to.end());
    };
    pipe(client, upstream, 'up');
    pipe(upstream, client, 'down');
    client.on('close', () => upstream.destroy());
    upstream.on('close', () => client.destroy());
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', () => resolve()));
  return {
    host: `127.0.0.1:${(server.address() as AddressInfo).port}`,
    get up() {
      return state.up;
    },
    get down() {
      return state.down;
    },
    get cut() {
      return state.cut;
    },
    async close() {
      for (const s of sockets) s.destroy();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}
