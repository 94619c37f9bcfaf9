// Small loopback servers and content generators for the registry client tests: fault-injecting
// proxies in front of a real docker-registry, and blobs generated on the fly.
import { execFile } from 'node:child_process';
import { createHash } from 'node:crypto';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { createServer, request as httpRequest, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo, Socket } from 'node:net';
import { Readable } from 'node:stream';
import { digestOf, type Digest } from '../../src/core/digest.ts';
import type { Descriptor } from '../../src/core/manifest.ts';

export interface LoopbackServer {
  host: string;
  url: string;
  server: Server;
  close(): Promise<void>;
}

/** An HTTP server on 127.0.0.1 and a free port; close() also cuts kept-alive sockets. */
export async function startServer(handler: (req: IncomingMessage, res: ServerResponse) => void): Promise<LoopbackServer> {
  const sockets = new Set<Socket>();
  const server = createServer(handler);
  server.on('connection', (s) => {
    sockets.add(s);
    s.on('close', () => sockets.delete(s));
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', () => resolve()));
  const port = (server.address() as AddressInfo).port;
  return {
    host: `127.0.0.1:${port}`,
    url: `http://127.0.0.1:${port}`,
    server,
    async close() {
      for (const s of sockets) s.destroy();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}

/**
 * Forward one request to `target` (http://host:port) and stream the answer back unchanged. The
 * Host header is kept, so the registry builds upload Locations that point back at the proxy.
 */
export function forward(target: string, req: IncomingMessage, res: ServerResponse, headers: Record<string, string | string[] | undefined> = req.headers): void {
  const t = new URL(target);
  const up = httpRequest({ host: t.hostname, port: t.port, method: req.method, path: req.url, headers }, (upRes) => {
    res.writeHead(upRes.statusCode ?? 502, upRes.headers);
    upRes.pipe(res);
  });
  up.on('error', () => res.destroy());
  req.pipe(up);
}

/** Deterministic pseudo-random bytes (xorshift), generated chunk by chunk: no blob is held whole. */
export function patternStream(size: number, seed: number, chunk = 256 * 1024): Readable {
  let produced = 0;
  let state = (seed | 0) || 1;
  return new Readable({
    read() {
      if (produced >= size) {
        this.push(null);
        return;
      }
      const n = Math.min(chunk, size - produced);
      const buf = Buffer.allocUnsafe(Math.ceil(n / 4) * 4);
      for (let i = 0; i < buf.length; i += 4) {
        state ^= state << 13;
        state ^= state >>> 17;
        state ^= state << 5;
        buf.writeInt32LE(state | 0, i);
      }
      produced += n;
      this.push(buf.subarray(0, n));
    },
  });
}

export async function digestOfStream(stream: AsyncIterable<Buffer | Uint8Array>): Promise<{ digest: Digest; size: number }> {
  const h = createHash('sha256');
  let size = 0;
  for await (const c of stream) {
    h.update(c);
    size += c.length;
  }
  return { digest: `sha256:${h.digest('hex')}`, size };
}

export async function patternDescriptor(size: number, seed: number, mediaType = 'application/vnd.oci.image.layer.v1.tar'): Promise<Descriptor> {
  const { digest } = await digestOfStream(patternStream(size, seed));
  return { mediaType, digest, size };
}

export function bytesDescriptor(bytes: Uint8Array | string, mediaType: string): { desc: Descriptor; bytes: Buffer } {
  const b = Buffer.from(bytes);
  return { desc: { mediaType, digest: digestOf(b), size: b.length }, bytes: b };
}

export function json(value: unknown): Buffer {
  return Buffer.from(JSON.stringify(value));
}

/** A client certificate (extendedKeyUsage clientAuth) signed by the CA in `caDir` (ca.crt/ca.key). */
export async function makeClientCert(caDir: string, outDir: string, name = 'client'): Promise<{ certFile: string; keyFile: string }> {
  const run = promisify(execFile);
  const keyFile = join(outDir, `${name}.key`);
  const csrFile = join(outDir, `${name}.csr`);
  const certFile = join(outDir, `${name}.cert`);
  const extFile = join(outDir, `${name}.ext`);
  await writeFile(extFile, 'basicConstraints=CA:FALSE\nkeyUsage=critical,digitalSignature\nextendedKeyUsage=clientAuth\n');
  const opts = { timeout: 15_000 };
  await run('openssl', ['req', '-new', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes', '-subj', '/CN=airlock-client', '-keyout', keyFile, '-out', csrFile], opts);
  await run('openssl', ['x509', '-req', '-in', csrFile, '-CA', join(caDir, 'ca.crt'), '-CAkey', join(caDir, 'ca.key'), '-set_serial', '0x1234', '-days', '30', '-extfile', extFile, '-out', certFile], opts);
  return { certFile, keyFile };
}
