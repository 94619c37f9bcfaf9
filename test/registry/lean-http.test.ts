// The lean blob-download client (src/registry/lean-http.ts) against hand-written HTTP/1.1 answers:
// raw node:net servers (and one node:tls server) on 127.0.0.1, so framing, split points and timing
// are ours to choose. What a downloader relies on: every byte in order, keep-alive reuse, framing
// errors as coded failures, backpressure, aborts, and no socket left behind.
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { getEventListeners } from 'node:events';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { createServer as netCreateServer, type AddressInfo, type Server, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { createSecureContext, createServer as tlsCreateServer } from 'node:tls';
import { fileURLToPath } from 'node:url';
import { LeanHttp, LeanHttpError, type LeanResponse } from '../../src/registry/lean-http.ts';
import { makeCa, makeServerCert } from '../helpers/tls.ts';
import { turns, until, within } from '../helpers/wait.ts';

const MiB = 1024 * 1024;
const cleanups: Array<() => Promise<void> | void> = [];
after(async () => {
  for (const c of cleanups.reverse()) await c();
});

// --- a raw HTTP/1.1 server whose answers the tests write byte for byte ---

interface RawRequest {
  socket: Socket;
  /** Request line and headers, without the final CRLF CRLF. */
  head: string;
  path: string;
  /** Index of the connection (in accept order) and of the request on it. */
  conn: number;
  seq: number;
}

interface RawServer {
  origin: string;
  url(path?: string): URL;
  /** Every connection accepted, in order. */
  sockets: Socket[];
  requests: RawRequest[];
  /** Resolves when connection `i` has closed on the server's side; rejects after `ms`. */
  whenClosed(i: number, ms?: number): Promise<void>;
  /** Resolves when the server has sent its last byte and FIN on connection `i`, then a few loop turns (the client can read them). */
  whenSent(i: number, ms?: number): Promise<void>;
  open(): number;
}

async function rawServer(answer: (req: RawRequest) => void | Promise<void>, tls?: { key: Buffer; cert: Buffer }): Promise<RawServer> {
  const sockets: Socket[] = [];
  const closes: Array<Promise<void>> = [];
  const requests: RawRequest[] = [];
  let open = 0;
  const onSocket = (socket: Socket): void => {
    const conn = sockets.length;
    sockets.push(socket);
    open++;
    closes.push(new Promise((resolve) => socket.once('close', () => (open--, resolve()))));
    socket.on('error', () => {});
    socket.setNoDelay(true);
    let buf = Buffer.alloc(0);
    let seq = 0;
    socket.on('data', (d: Buffer) => {
      buf = Buffer.concat([buf, d]);
      for (let end = buf.indexOf('\r\n\r\n'); end >= 0; end = buf.indexOf('\r\n\r\n')) {
        const head = buf.subarray(0, end).toString('latin1');
        buf = buf.subarray(end + 4);
        const req: RawRequest = { socket, head, path: head.split(' ')[1] ?? '', conn, seq: seq++ };
        requests.push(req);
        Promise.resolve()
          .then(() => answer(req))
          .catch(() => socket.destroy());
      }
    });
  };
  const server: Server = tls ? tlsCreateServer(tls, onSocket) : netCreateServer(onSocket);
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const port = (server.address() as AddressInfo).port;
  const origin = `${tls ? 'https' : 'http'}://127.0.0.1:${port}`;
  cleanups.push(async () => {
    for (const s of sockets) s.destroy();
    await new Promise<void>((resolve) => server.close(() => resolve()));
  });
  return {
    origin,
    url: (path = '/blob') => new URL(path, origin),
    sockets,
    requests,
    whenClosed: (i, ms = 2000) => within(closes[i] ?? Promise.reject(new Error(`no connection ${i}`)), ms, `server-side close of connection ${i}`),
    whenSent: async (i, ms = 2000) => {
      const s = sockets[i];
      if (s === undefined) throw new Error(`no connection ${i}`);
      if (!s.writableFinished) await within(new Promise<void>((resolve) => s.once('finish', () => resolve())), ms, `the server's FIN on connection ${i}`);
      await turns();
    },
    open: () => open,
  };
}

function head(status: number, headers: Array<[string, string | number]>, reason = 'OK'): string {
  return `HTTP/1.1 ${status} ${reason}\r\n${headers.map(([k, v]) => `${k}: ${v}\r\n`).join('')}\r\n`;
}

function write(socket: Socket, data: string | Buffer): Promise<void> {
  return new Promise((resolve) => {
    if (socket.destroyed) return resolve();
    socket.write(data, () => resolve());
  });
}

const tick = (): Promise<void> => new Promise((resolve) => setImmediate(resolve));
const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));

/** Writes `data` in pieces, yielding to the event loop between them so each tends to be its own read. */
async function dribble(socket: Socket, data: Buffer | string, pieceSize: (i: number) => number): Promise<void> {
  const buf = Buffer.from(data);
  for (let at = 0, i = 0; at < buf.length && !socket.destroyed; i++) {
    const n = Math.max(1, Math.min(pieceSize(i), buf.length - at));
    await write(socket, buf.subarray(at, at + n));
    at += n;
    await tick();
  }
}



/** What an abort rejects with. */
const ABORTED = { name: 'AbortedError', code: 'ABORTED' };

const sha = (b: Buffer | string): string => createHash('sha256').update(b).digest('hex');

/** A sink that hashes and counts (the chunks are transient: nothing of them is kept). */
function hashingSink(): { sink: (c: Buffer) => void; digest(): string; bytes(): number; calls(): number } {
  const h = createHash('sha256');
  let n = 0;
  let calls = 0;
  return {
    sink: (c) => {
      h.update(c);
      n += c.length;
      calls++;
    },
    digest: () => h.digest('hex'),
    bytes: () => n,
    calls: () => calls,
  };
}

/** A sink that keeps copies (the chunk's memory is reused after the call). */
function collectingSink(): { sink: (c: Buffer) => void; text(): string; buffer(): Buffer } {
  const parts: Buffer[] = [];
  return { sink: (c) => void parts.push(Buffer.from(c)), text: () => Buffer.concat(parts).toString('latin1'), buffer: () => Buffer.concat(parts) };
}

function client(tls?: () => Promise<{ secureContext: ReturnType<typeof createSecureContext>; rejectUnauthorized: boolean }>): LeanHttp {
  const c = new LeanHttp({ tls: tls ?? (async () => Promise.reject(new Error('this test uses plain HTTP'))) });
  cleanups.push(() => c.close());
  return c;
}

async function getText(c: LeanHttp, url: URL): Promise<{ res: LeanResponse; body: string }> {
  const res = await within(c.get(url, {}), 3000, `GET ${url.pathname}`);
  const col = collectingSink();
  await within(res.pump(col.sink), 3000, `body of ${url.pathname}`);
  return { res, body: col.text() };
}

function leanCode(code: string): (e: unknown) => boolean {
  return (e: unknown) => {
    assert.ok(e instanceof LeanHttpError, `expected a LeanHttpError ${code}, got ${String(e)}`);
    assert.equal(e.code, code, e.message);
    return true;
  };
}

/** An answer with a Content-Length body, written in one go. */
function lengthAnswer(body: Buffer | string, extra: Array<[string, string | number]> = []): Buffer {
  const b = Buffer.from(body);
  return Buffer.concat([Buffer.from(head(200, [['Content-Length', b.length], ...extra])), b]);
}

// ---------------------------------------------------------------------------------------------

describe('Content-Length bodies', () => {
  test('a multi-MiB body written at once (bigger than the read buffer) reaches the sink whole and in order', async () => {
    const body = randomBytes(5 * MiB + 123);
    const srv = await rawServer(({ socket }) =>
      void socket.write(
        Buffer.concat([
          Buffer.from(head(200, [['Content-Length', body.length], ['Content-Type', 'application/octet-stream'], ['X-Multi', 'a'], ['x-multi', 'b'], ['Docker-Content-Digest', `sha256:${sha(body)}`]])),
          body,
        ]),
      ),
    );
    const c = client();
    const res = await within(c.get(srv.url('/v2/lab/app/blobs/x?ns=docker.io'), { accept: '*/*', 'User-Agent': 'airlock-test' }), 3000, 'GET');
    assert.equal(res.status, 200);
    assert.equal(res.headers['content-length'], String(body.length));
    assert.equal(res.headers['content-type'], 'application/octet-stream');
    assert.deepEqual(res.headers['x-multi'], ['a', 'b']);
    assert.equal(res.headers['docker-content-digest'], `sha256:${sha(body)}`);
    assert.ok(!('Content-Type' in res.headers), 'header names are lower-case');
    const h = hashingSink();
    await within(res.pump(h.sink), 5000, 'body');
    assert.equal(h.bytes(), body.length);
    assert.equal(h.digest(), sha(body));
    // The request as sent: path with query, Host, and the caller's headers.
    const sent = srv.requests[0]!.head.split('\r\n');
    assert.equal(sent[0], 'GET /v2/lab/app/blobs/x?ns=docker.io HTTP/1.1');
    assert.ok(sent.includes(`host: 127.0.0.1:${srv.url().port}`), sent.join(' | '));
    assert.ok(sent.includes('accept: */*'));
    assert.ok(sent.includes('User-Agent: airlock-test'));
  });

  test('a body dribbled in many small writes arrives exactly, and the sink sees its bytes in order', async () => {
    const body = randomBytes(300 * 1024);
    const sizes = [1, 7, 1500, 2, 4096, 33, 3000, 512];
    const srv = await rawServer(async ({ socket }) => {
      // the head itself is split too, inside the status line and inside the final CRLF CRLF
      const h = head(200, [['Content-Length', body.length]]);
      await dribble(socket, h, (i) => [3, 10, 1, h.length][i] ?? 1);
      await dribble(socket, body, (i) => sizes[i % sizes.length]!);
    });
    const c = client();
    const res = await within(c.get(srv.url(), {}), 3000, 'GET');
    const col = collectingSink();
    const h = hashingSink();
    await within(
      res.pump((chunk) => {
        col.sink(chunk);
        h.sink(chunk);
      }),
      10_000,
      'body',
    );
    assert.ok(col.buffer().equals(body));
    assert.equal(h.digest(), sha(body));
    assert.ok(h.calls() > 10, `the body came in ${h.calls()} pieces; the test meant many`);
  });

  test('bytes beyond Content-Length are not handed on, and that connection is not reused', async () => {
    const srv = await rawServer(({ socket, path }) => {
      if (path === '/over') socket.write(Buffer.concat([lengthAnswer('12345'), Buffer.from('EXTRA BYTES')]));
      else socket.write(lengthAnswer('fine'));
    });
    const c = client();
    assert.equal((await getText(c, srv.url('/over'))).body, '12345');
    assert.equal((await getText(c, srv.url('/next'))).body, 'fine');
    assert.equal(srv.sockets.length, 2);
    await srv.whenClosed(0);
  });

  test('Content-Length: 0 and a repeated identical Content-Length are fine; the connection is reused', async () => {
    const srv = await rawServer(({ socket, path }) => {
      if (path === '/empty') socket.write(head(200, [['Content-Length', 0]]));
      else socket.write(head(200, [['Content-Length', '5, 5'], ['Content-Length', '5']]) + 'hello');
    });
    const c = client();
    const h = hashingSink();
    const res = await within(c.get(srv.url('/empty'), {}), 3000, 'GET');
    await within(res.pump(h.sink), 3000, 'empty body');
    assert.equal(h.calls(), 0);
    assert.equal((await getText(c, srv.url('/same'))).body, 'hello');
    assert.equal(srv.sockets.length, 1);
  });

  test('pump() a second time is refused', async () => {
    const srv = await rawServer(({ socket }) => void socket.write(lengthAnswer('abc')));
    const c = client();
    const res = await within(c.get(srv.url(), {}), 3000, 'GET');
    await within(res.pump(() => {}), 3000, 'body');
    await assert.rejects(res.pump(() => {}), /already taken/);
  });
});

describe('keep-alive', () => {
  test('two sequential GETs to one origin use one connection', async () => {
    const srv = await rawServer(({ socket, path }) => void socket.write(lengthAnswer(`body of ${path}`)));
    const c = client();
    assert.equal((await getText(c, srv.url('/one'))).body, 'body of /one');
    assert.equal((await getText(c, srv.url('/two'))).body, 'body of /two');
    assert.equal(srv.sockets.length, 1);
    assert.deepEqual(
      srv.requests.map((r) => [r.conn, r.seq, r.path]),
      [
        [0, 0, '/one'],
        [0, 1, '/two'],
      ],
    );
  });

  test('parallel GETs open one connection each, and the pool then serves as many again without new ones', async () => {
    // Answered three at a time, once all three arrived: they are in flight together.
    let held: Array<() => void> = [];
    const srv = await rawServer(({ socket, path }) => {
      held.push(() => socket.write(lengthAnswer(path)));
      if (held.length === 3) for (const answer of held.splice(0)) answer();
    });
    const c = client();
    const round = async (tag: string): Promise<string[]> =>
      Promise.all(['1', '2', '3'].map(async (n) => (await getText(c, srv.url(`/${tag}${n}`))).body));
    assert.deepEqual(await round('a'), ['/a1', '/a2', '/a3']);
    assert.deepEqual(await round('b'), ['/b1', '/b2', '/b3']);
    assert.equal(srv.sockets.length, 3);
  });

  test('a 204 answer has no body and leaves the connection reusable', async () => {
    const srv = await rawServer(({ socket, path }) => void socket.write(path === '/none' ? 'HTTP/1.1 204 No Content\r\n\r\n' : lengthAnswer('after')));
    const c = client();
    const { res, body } = await getText(c, srv.url('/none'));
    assert.equal(res.status, 204);
    assert.equal(body, '');
    assert.equal((await getText(c, srv.url('/next'))).body, 'after');
    assert.equal(srv.sockets.length, 1);
  });

  test('one AbortSignal for many GETs: no abort listener is left behind', async () => {
    const srv = await rawServer(({ socket }) => void socket.write(lengthAnswer('x')));
    const c = client();
    const ac = new AbortController();
    for (let i = 0; i < 20; i++) {
      const res = await within(c.get(srv.url(`/${i}`), {}, ac.signal), 3000, 'GET');
      if (i % 2 === 0) await within(res.pump(() => {}), 3000, 'body');
      else res.discard();
    }
    assert.equal(getEventListeners(ac.signal, 'abort').length, 0);
  });

  test('an answer with Connection: close is not reused: the next GET opens a new connection', async () => {
    // The server leaves the socket open: closing it is the client's job here.
    const srv = await rawServer(({ socket, conn }) => void socket.write(lengthAnswer(`conn ${conn}`, conn === 0 ? [['Connection', 'close']] : [])));
    const c = client();
    assert.equal((await getText(c, srv.url('/a'))).body, 'conn 0');
    await srv.whenClosed(0);
    assert.equal((await getText(c, srv.url('/b'))).body, 'conn 1');
    assert.equal(srv.sockets.length, 2);
  });

  test('an HTTP/1.0 answer without keep-alive is not reused', async () => {
    const srv = await rawServer(({ socket }) => void socket.write('HTTP/1.0 200 OK\r\nContent-Length: 2\r\n\r\nok'));
    const c = client();
    assert.equal((await getText(c, srv.url('/a'))).body, 'ok');
    assert.equal((await getText(c, srv.url('/b'))).body, 'ok');
    assert.equal(srv.sockets.length, 2);
  });

  test('the server closing an idle kept-alive connection: the next GET succeeds on a new one', async () => {
    const srv = await rawServer(({ socket, conn }) => void socket.write(lengthAnswer(`conn ${conn}`)));
    const c = client();
    assert.equal((await getText(c, srv.url('/a'))).body, 'conn 0');
    // Closed once the client holds the answer and the connection idles in its pool.
    srv.sockets[0]!.end();
    await srv.whenClosed(0);
    assert.equal((await getText(c, srv.url('/b'))).body, 'conn 1');
    assert.equal(srv.sockets.length, 2);
  });

  test('a kept-alive connection the server drops as the request arrives is retried once on a new one', async () => {
    const srv = await rawServer(({ socket, conn, seq }) => {
      // the race a pool always loses sometimes: the server times the idle connection out just as we send
      if (conn === 0 && seq === 1) return void socket.destroy();
      socket.write(lengthAnswer(`conn ${conn} seq ${seq}`));
    });
    const c = client();
    assert.equal((await getText(c, srv.url('/a'))).body, 'conn 0 seq 0');
    assert.equal((await getText(c, srv.url('/b'))).body, 'conn 1 seq 0');
    assert.deepEqual(
      srv.requests.map((r) => r.path),
      ['/a', '/b', '/b'],
    );
  });

  test('stray bytes on an idle connection retire it; the next GET uses a new one', async () => {
    const srv = await rawServer(({ socket, conn }) => void socket.write(lengthAnswer(`conn ${conn}`)));
    const c = client();
    assert.equal((await getText(c, srv.url('/a'))).body, 'conn 0');
    // Sent once the client holds the answer and the connection idles in its pool.
    srv.sockets[0]!.write('HTTP/1.1 200 OK\r\n');
    await srv.whenClosed(0);
    assert.equal((await getText(c, srv.url('/b'))).body, 'conn 1');
  });
});

describe('chunked and read-until-close bodies', () => {
  const chunked = [
    head(200, [['Transfer-Encoding', 'chunked'], ['Trailer', 'X-Checksum']]),
    '5;name=value;other="quoted"\r\nhello\r\n',
    'A \t;ext\r\n, world!!!\r\n',
    '1\r\n\n\r\n',
    '10\r\n0123456789abcdef\r\n',
    '0;last\r\nX-Checksum: 1234\r\nX-More: yes\r\n\r\n',
  ].join('');
  const decoded = 'hello, world!!!\n0123456789abcdef';

  test('a chunked body with extensions and trailers, written byte by byte, decodes exactly; the connection is reused', async () => {
    const srv = await rawServer(async ({ socket, seq }) => {
      if (seq === 0) await dribble(socket, chunked, () => 1);
      else await write(socket, lengthAnswer('second'));
    });
    const c = client();
    const { res, body } = await getText(c, srv.url('/chunked'));
    assert.equal(res.headers['transfer-encoding'], 'chunked');
    assert.equal(body, decoded);
    assert.equal((await getText(c, srv.url('/next'))).body, 'second');
    assert.equal(srv.sockets.length, 1);
  });

  test('the same chunked answer in one write decodes the same', async () => {
    const srv = await rawServer(({ socket }) => void socket.write(chunked));
    const { body } = await getText(client(), srv.url());
    assert.equal(body, decoded);
  });

  test('chunked decoding is right at every split point of the answer', async () => {
    // one write in two parts, split at each position of the body: size lines, CRLFs, data, trailers
    const bodyStart = chunked.indexOf('\r\n\r\n') + 4;
    const splits: number[] = [];
    for (let at = bodyStart - 2; at < chunked.length; at++) splits.push(at);
    let n = 0;
    const srv = await rawServer(async ({ socket }) => {
      const at = splits[n++]!;
      await write(socket, chunked.slice(0, at));
      await turns(); // lets the client read the first part on its own
      await write(socket, chunked.slice(at));
    });
    const c = client();
    for (const at of splits) {
      const { body } = await getText(c, srv.url(`/split-${at}`));
      assert.equal(body, decoded, `split at ${at}`);
    }
  });

  test('Transfer-Encoding chunked wins over Content-Length, and such a connection is not reused', async () => {
    const srv = await rawServer(({ socket, path }) =>
      void socket.write(path === '/both' ? head(200, [['Content-Length', 3], ['Transfer-Encoding', 'chunked']]) + '5\r\nhello\r\n0\r\n\r\n' : lengthAnswer('next')),
    );
    const c = client();
    assert.equal((await getText(c, srv.url('/both'))).body, 'hello');
    assert.equal((await getText(c, srv.url('/next'))).body, 'next');
    assert.equal(srv.sockets.length, 2);
  });

  test('a read-until-close body whose sink is still waiting when the server closes ends cleanly', async () => {
    let sent!: () => void;
    const ended = new Promise<void>((resolve) => (sent = resolve));
    const srv = await rawServer(({ socket }) => void socket.end('HTTP/1.1 200 OK\r\n\r\n' + 'z'.repeat(1000), sent));
    const c = client();
    const res = await within(c.get(srv.url(), {}), 3000, 'GET');
    const col = collectingSink();
    await within(
      res.pump((chunk) => {
        col.sink(chunk);
        // The sink waits until the server has sent everything and its FIN.
        return ended.then(() => turns());
      }),
      3000,
      'body',
    );
    assert.equal(col.text(), 'z'.repeat(1000));
  });

  test('an empty chunked body ends cleanly with no bytes', async () => {
    const srv = await rawServer(({ socket }) => void socket.write(head(200, [['Transfer-Encoding', 'chunked']]) + '0\r\n\r\n'));
    const c = client();
    const h = hashingSink();
    const res = await within(c.get(srv.url(), {}), 3000, 'GET');
    await within(res.pump(h.sink), 3000, 'body');
    assert.equal(h.bytes(), 0);
    // and the connection went back to the pool
    await getText(c, srv.url('/again'));
    assert.equal(srv.sockets.length, 1);
  });

  test('a body without Content-Length or Transfer-Encoding is read until the server closes', async () => {
    const body = randomBytes(700 * 1024);
    const srv = await rawServer(async ({ socket }) => {
      await write(socket, 'HTTP/1.1 200 OK\r\nContent-Type: application/octet-stream\r\n\r\n');
      await dribble(socket, body, () => 64 * 1024 + 17);
      socket.end();
    });
    const c = client();
    const res = await within(c.get(srv.url(), {}), 3000, 'GET');
    const h = hashingSink();
    await within(res.pump(h.sink), 5000, 'body');
    assert.equal(h.bytes(), body.length);
    assert.equal(h.digest(), sha(body));
    // the next GET needs (and gets) a new connection
    await srv.whenClosed(0);
  });
});

describe('1xx answers', () => {
  test('100 Continue and 103 Early Hints before the answer are skipped', async () => {
    const srv = await rawServer(async ({ socket, path }) => {
      const early = 'HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 103 Early Hints\r\nLink: </style.css>; rel=preload\r\n\r\n';
      const final = head(200, [['Content-Length', 5], ['X-Final', 'yes']]) + 'final';
      if (path === '/together') await write(socket, early + final);
      else {
        await write(socket, 'HTTP/1.1 100 Continue\r\n\r\n');
        await turns();
        await dribble(socket, early.slice(25) + final, () => 3);
      }
    });
    const c = client();
    for (const path of ['/together', '/apart']) {
      const { res, body } = await getText(c, srv.url(path));
      assert.equal(res.status, 200, path);
      assert.equal(res.headers['x-final'], 'yes', path);
      assert.equal(res.headers.link, undefined, `${path}: headers of the 103 are not the answer's`);
      assert.equal(body, 'final', path);
    }
  });

  test('a short final answer in the same read as the end of a long 1xx head is not lost', async () => {
    // A 103 head split across two reads, the second read also holding the whole (short) final answer.
    const early = `HTTP/1.1 103 Early Hints\r\nLink: </${'x'.repeat(200)}>; rel=preload\r\n`;
    const srv = await rawServer(async ({ socket }) => {
      await write(socket, early);
      await turns(); // the client reads the partial head on its own
      await write(socket, '\r\n' + head(200, [['Content-Length', 3]]) + 'abc');
    });
    const c = client();
    const res = await within(c.get(srv.url(), {}), 1000, 'GET after a split 1xx head');
    const col = collectingSink();
    await within(res.pump(col.sink), 1000, 'body');
    assert.equal(res.status, 200);
    assert.equal(col.text(), 'abc');
  });

  test('101 Switching Protocols is refused', async () => {
    const srv = await rawServer(({ socket }) => void socket.write('HTTP/1.1 101 Switching Protocols\r\nUpgrade: h2c\r\n\r\n'));
    await assert.rejects(within(client().get(srv.url(), {}), 3000, 'GET'), leanCode('LEAN_UNEXPECTED_UPGRADE'));
  });
});

describe('backpressure', () => {
  test('a sink that returns promises (timers, immediates) still gets every byte in order', async () => {
    const body = randomBytes(6 * MiB + 7);
    const srv = await rawServer(({ socket }) => void socket.write(lengthAnswer(body)));
    const c = client();
    const res = await within(c.get(srv.url(), {}), 3000, 'GET');
    const h = createHash('sha256');
    let n = 0;
    let calls = 0;
    await within(
      res.pump((chunk) => {
        h.update(chunk);
        n += chunk.length;
        calls++;
        if (calls % 3 === 0) return new Promise<void>((resolve) => setTimeout(resolve, 1));
        if (calls % 3 === 1) return new Promise<void>((resolve) => setImmediate(resolve));
        return undefined;
      }),
      10_000,
      'body',
    );
    assert.equal(n, body.length);
    assert.equal(h.digest('hex'), sha(body));
  });

  test('a waiting sink stops the reading: the server cannot get rid of its bytes meanwhile', async () => {
    const body = randomBytes(24 * MiB);
    let server: Socket | undefined;
    const srv = await rawServer(({ socket }) => {
      server = socket;
      socket.write(lengthAnswer(body));
    });
    const c = client();
    const res = await within(c.get(srv.url(), {}), 3000, 'GET');
    let release: (() => void) | undefined;
    const blocked = new Promise<void>((resolve) => (release = resolve));
    const h = hashingSink();
    const done = res.pump((chunk) => {
      h.sink(chunk);
      if (h.calls() === 1) return blocked;
    });
    // An observation window, not a wait for an event: a client that kept reading would show it
    // here by handing over more chunks and draining the server; passing never depends on its length.
    await sleep(300);
    assert.equal(h.calls(), 1, 'nothing more is handed over while the sink waits');
    // Kernel buffers hold a few MiB at most: the rest must still sit with the server.
    assert.ok(server!.writableLength > 8 * MiB, `server still holds ${server!.writableLength} bytes`);
    release!();
    await within(done, 10_000, 'body');
    assert.equal(h.bytes(), body.length);
    assert.equal(h.digest(), sha(body));
  });
});

describe('failures', () => {
  test('a sink that throws: pump rejects with that error, and the next GET works on a new connection', async () => {
    const srv = await rawServer(({ socket }) => void socket.write(lengthAnswer(randomBytes(512 * 1024))));
    const c = client();
    const boom = new Error('the disk is full');
    let res = await within(c.get(srv.url('/a'), {}), 3000, 'GET');
    await assert.rejects(
      within(
        res.pump(() => {
          throw boom;
        }),
        3000,
        'body',
      ),
      (e) => e === boom,
    );
    await srv.whenClosed(0);
    // a sink that rejects later
    const late = new Error('the write failed');
    res = await within(c.get(srv.url('/b'), {}), 3000, 'GET');
    let calls = 0;
    await assert.rejects(within(res.pump(() => (++calls === 2 ? Promise.reject(late) : undefined)), 3000, 'body'), (e) => e === late);
    await srv.whenClosed(1);
    const h = hashingSink();
    res = await within(c.get(srv.url('/c'), {}), 3000, 'GET');
    await within(res.pump(h.sink), 3000, 'body');
    assert.equal(h.bytes(), 512 * 1024);
    assert.equal(srv.sockets.length, 3);
  });

  test('a sink that throws on bytes held back before pump() (the backlog) rejects the same way', async () => {
    const srv = await rawServer(({ socket }) => void socket.write(lengthAnswer('small body')));
    const c = client();
    const res = await within(c.get(srv.url(), {}), 3000, 'GET');
    const boom = new Error('no');
    await assert.rejects(
      within(
        res.pump(() => {
          throw boom;
        }),
        3000,
        'body',
      ),
      (e) => e === boom,
    );
  });

  test('a body cut short by the server (FIN or RST) rejects pump with ECONNRESET', async () => {
    const srv = await rawServer(async ({ socket, path }) => {
      await write(socket, head(200, [['Content-Length', MiB]]));
      await write(socket, randomBytes(100 * 1024));
      if (path === '/rst') socket.resetAndDestroy();
      else socket.destroy();
    });
    const c = client();
    for (const path of ['/fin', '/rst']) {
      const res = await within(c.get(srv.url(path), {}), 3000, 'GET');
      const h = hashingSink();
      await assert.rejects(within(res.pump(h.sink), 3000, 'body'), (e: unknown) => {
        assert.equal((e as { code?: string }).code, 'ECONNRESET', `${path}: ${String(e)}`);
        return true;
      });
      assert.ok(h.bytes() <= 100 * 1024, path);
    }
  });

  test('a body cut short before pump() is called still rejects pump', async () => {
    const srv = await rawServer(async ({ socket }) => {
      await write(socket, head(200, [['Content-Length', 1000]]) + 'only a part');
      socket.end();
    });
    const c = client();
    const res = await within(c.get(srv.url(), {}), 3000, 'GET');
    // The partial body and the FIN are sent: the client gets them before pump().
    await srv.whenSent(0);
    const col = collectingSink();
    await assert.rejects(within(res.pump(col.sink), 3000, 'body'), (e: unknown) => (e as { code?: string }).code === 'ECONNRESET');
    assert.equal(col.text(), 'only a part');
  });

  test('headers that never finish: get rejects with ECONNRESET', async () => {
    const srv = await rawServer(async ({ socket }) => {
      await write(socket, 'HTTP/1.1 200 OK\r\nContent-Le');
      socket.end();
    });
    await assert.rejects(within(client().get(srv.url(), {}), 3000, 'GET'), leanCode('ECONNRESET'));
  });

  test('nothing listening: get rejects with ECONNREFUSED', async () => {
    const dead = netCreateServer();
    // a port that was free a moment ago
    await new Promise<void>((resolve) => dead.listen(0, '127.0.0.1', resolve));
    const deadPort = (dead.address() as AddressInfo).port;
    await new Promise<void>((resolve) => dead.close(() => resolve()));
    await assert.rejects(within(client().get(new URL(`http://127.0.0.1:${deadPort}/`), {}), 3000, 'GET'), (e: unknown) => (e as { code?: string }).code === 'ECONNREFUSED');
  });

  test('framing errors have codes: bad status line, head too large, bad Content-Length, bad header line', async () => {
    const answers: Record<string, string> = {
      '/status-2000': 'HTTP/1.1 2000 OK\r\nContent-Length: 0\r\n\r\n',
      '/status-icy': 'ICY 200 OK\r\nContent-Length: 0\r\n\r\n',
      '/status-h2': 'HTTP/2 200\r\nContent-Length: 0\r\n\r\n',
      '/status-empty': '\r\n\r\n',
      '/len-abc': 'HTTP/1.1 200 OK\r\nContent-Length: abc\r\n\r\n',
      '/len-neg': 'HTTP/1.1 200 OK\r\nContent-Length: -1\r\n\r\n',
      '/len-two': 'HTTP/1.1 200 OK\r\nContent-Length: 5, 6\r\n\r\nhello!',
      '/len-repeat': 'HTTP/1.1 200 OK\r\nContent-Length: 5\r\nContent-Length: 6\r\n\r\nhello!',
      '/len-empty': 'HTTP/1.1 200 OK\r\nContent-Length: \r\n\r\n',
      '/len-huge': `HTTP/1.1 200 OK\r\nContent-Length: ${'9'.repeat(16)}\r\n\r\n`,
      '/len-float': 'HTTP/1.1 200 OK\r\nContent-Length: 1e3\r\n\r\n',
      '/header-nocolon': 'HTTP/1.1 200 OK\r\nContent-Length 5\r\n\r\nhello',
      '/header-fold': 'HTTP/1.1 200 OK\r\nX-A: 1\r\n  folded\r\nContent-Length: 0\r\n\r\n',
    };
    const srv = await rawServer(({ socket, path }) => void socket.write(answers[path] ?? 'HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\n\r\n'));
    const c = client();
    for (const path of Object.keys(answers)) {
      const code = path.startsWith('/status') ? 'LEAN_BAD_STATUS_LINE' : path.startsWith('/len') ? 'LEAN_BAD_LENGTH' : 'LEAN_BAD_HEADER';
      await assert.rejects(within(c.get(srv.url(path), {}), 3000, path), leanCode(code), path);
    }
    // each failure cost its connection; the pool still answers
    const { res } = await getText(c, srv.url('/fine'));
    assert.equal(res.status, 404);
  });

  test('headers over 64 KiB are refused with LEAN_HEAD_TOO_LARGE (unfinished, or finished but huge)', async () => {
    const pad = (bytes: number): string => Array.from({ length: Math.ceil(bytes / 1000) }, (_, i) => `X-Pad-${i}: ${'p'.repeat(990)}\r\n`).join('');
    const srv = await rawServer(async ({ socket, path }) => {
      if (path === '/unfinished') await write(socket, `HTTP/1.1 200 OK\r\n${pad(70 * 1024)}`);
      else await write(socket, `HTTP/1.1 200 OK\r\n${pad(400 * 1024)}Content-Length: 0\r\n\r\n`);
    });
    const c = client();
    await assert.rejects(within(c.get(srv.url('/unfinished'), {}), 3000, 'unfinished'), leanCode('LEAN_HEAD_TOO_LARGE'));
    await assert.rejects(within(c.get(srv.url('/huge'), {}), 3000, 'huge'), leanCode('LEAN_HEAD_TOO_LARGE'));
  });

  test('a finished 70 KiB header block is refused too', async () => {
    const pad = Array.from({ length: 70 }, (_, i) => `X-Pad-${i}: ${'p'.repeat(1010)}\r\n`).join('');
    const srv = await rawServer(({ socket }) => void socket.write(`HTTP/1.1 200 OK\r\n${pad}Content-Length: 0\r\n\r\n`));
    await assert.rejects(within(client().get(srv.url(), {}), 3000, 'GET'), leanCode('LEAN_HEAD_TOO_LARGE'));
  });

  test('bad chunk framing rejects pump with LEAN_BAD_CHUNK', async () => {
    const te = head(200, [['Transfer-Encoding', 'chunked']]);
    const bodies: Record<string, string> = {
      '/size-hex': 'zz\r\nhello\r\n0\r\n\r\n',
      '/size-neg': '-1\r\nx\r\n0\r\n\r\n',
      '/size-empty': '\r\nhello\r\n0\r\n\r\n',
      '/size-too-many-digits': `${'1'.repeat(13)}\r\nhello\r\n0\r\n\r\n`,
      '/no-crlf-after-data': '3\r\nabcX\r\n0\r\n\r\n',
      '/line-too-long': `1;${'e'.repeat(5000)}\r\nx\r\n0\r\n\r\n`,
    };
    const srv = await rawServer(({ socket, path }) => void socket.write(te + (bodies[path] ?? '')));
    const c = client();
    for (const path of Object.keys(bodies)) {
      const res = await within(c.get(srv.url(path), {}), 3000, path);
      await assert.rejects(within(res.pump(() => {}), 3000, path), leanCode('LEAN_BAD_CHUNK'), path);
    }
  });

  test('a header name or value that would break the request is a TypeError, and nothing is sent', async () => {
    const srv = await rawServer(({ socket }) => void socket.write(lengthAnswer('x')));
    const c = client();
    const bad: Array<Record<string, string>> = [
      { 'x-a': 'one\r\nInjected: yes' },
      { 'x-a': 'line\nfeed' },
      { 'x-a': 'carriage\rreturn' },
      { 'bad name': 'v' },
      { 'x-a\r\nInjected': 'v' },
      { '': 'v' },
    ];
    for (const headers of bad) await assert.rejects(c.get(srv.url(), headers), { name: 'TypeError', message: /^header ".*" cannot be sent$/ }, JSON.stringify(headers));
    await assert.rejects(c.get(new URL('ftp://127.0.0.1/x'), {}), { name: 'TypeError', message: 'not an HTTP URL: ftp:' });
    assert.equal(srv.sockets.length, 0);
  });
});

describe('abort and discard', () => {
  test('aborted while waiting for headers: AbortedError, and the connection is closed', async () => {
    const srv = await rawServer(() => {}); // never answers
    const c = client();
    const ac = new AbortController();
    const pending = c.get(srv.url(), {}, ac.signal);
    await until(() => srv.requests.length === 1, 'request arrival', 2000);
    ac.abort(new Error('user pressed ^C'));
    await assert.rejects(within(pending, 2000, 'GET'), ABORTED);
    await srv.whenClosed(0);
  });

  test('aborted while pumping: AbortedError, and the connection is closed', async () => {
    const srv = await rawServer(async ({ socket }) => {
      await write(socket, head(200, [['Content-Length', MiB]]));
      await write(socket, randomBytes(64 * 1024)); // then nothing more
    });
    const c = client();
    const ac = new AbortController();
    const res = await within(c.get(srv.url(), {}, ac.signal), 3000, 'GET');
    const h = hashingSink();
    const done = res.pump(h.sink);
    await until(() => h.bytes() === 64 * 1024, 'first bytes', 2000);
    ac.abort();
    await assert.rejects(within(done, 2000, 'body'), ABORTED);
    await srv.whenClosed(0);
  });

  test('aborted while the sink waits: AbortedError at once, no byte after it', async () => {
    const srv = await rawServer(({ socket }) => void socket.write(lengthAnswer(randomBytes(2 * MiB))));
    const c = client();
    const ac = new AbortController();
    const res = await within(c.get(srv.url(), {}, ac.signal), 3000, 'GET');
    let resolveWait: (() => void) | undefined;
    let calls = 0;
    let afterAbort = 0;
    const done = res.pump(() => {
      if (ac.signal.aborted) afterAbort++;
      if (++calls === 1) return new Promise<void>((resolve) => (resolveWait = resolve));
    });
    await until(() => calls === 1, 'first chunk', 2000);
    ac.abort();
    await assert.rejects(within(done, 2000, 'body'), ABORTED);
    resolveWait!();
    await srv.whenClosed(0);
    assert.equal(afterAbort, 0);
  });

  test('a signal aborted before get(): AbortedError, no connection', async () => {
    const srv = await rawServer(({ socket }) => void socket.write(lengthAnswer('after')));
    const c = client();
    await assert.rejects(c.get(srv.url('/aborted'), {}, AbortSignal.abort()), ABORTED);
    // A GET after it is the first and only connection the server sees.
    assert.equal((await getText(c, srv.url('/after'))).body, 'after');
    assert.deepEqual(srv.requests.map((r) => [r.conn, r.path]), [[0, '/after']]);
    assert.equal(srv.sockets.length, 1);
  });

  test('discard() after the headers closes the connection; pump then rejects; the pool serves the next GET', async () => {
    const srv = await rawServer(({ socket, path }) => void socket.write(lengthAnswer(path === '/big' ? randomBytes(MiB) : 'next')));
    const c = client();
    const res = await within(c.get(srv.url('/big'), {}), 3000, 'GET');
    assert.equal(res.status, 200);
    res.discard();
    await srv.whenClosed(0);
    await assert.rejects(res.pump(() => {}), leanCode('LEAN_DISCARDED'));
    assert.equal((await getText(c, srv.url('/after'))).body, 'next');
    assert.equal(srv.sockets.length, 2);
  });

  test('discard() from inside the sink: no byte reaches the sink after it', async () => {
    // many small chunks in one read: the decoder must stop at once, not finish the read
    const chunks = Array.from({ length: 20 }, (_, i) => `3\r\n${String(i).padStart(3, '0')}\r\n`).join('');
    const srv = await rawServer(({ socket }) => void socket.write(head(200, [['Transfer-Encoding', 'chunked']]) + chunks + '0\r\n\r\n'));
    const c = client();
    const res = await within(c.get(srv.url(), {}), 3000, 'GET');
    const seen: string[] = [];
    await assert.rejects(
      within(
        res.pump((chunk) => {
          seen.push(chunk.toString());
          res.discard();
        }),
        3000,
        'body',
      ),
      leanCode('LEAN_DISCARDED'),
    );
    assert.deepEqual(seen, ['000']);
  });
});

describe('bytes that arrive before pump()', () => {
  test('headers and the whole body in one read, pump() 50 ms later: the body is delivered', async () => {
    let wrote: (() => void) | undefined;
    const written = new Promise<void>((resolve) => (wrote = resolve));
    const srv = await rawServer(({ socket }) => void socket.write(lengthAnswer('all in one read'), () => wrote?.()));
    const c = client();
    const res = await within(c.get(srv.url('/a'), {}), 3000, 'GET');
    // The whole answer is on its way (handed to the kernel); a few turns let the client read it.
    await written;
    await turns();
    const col = collectingSink();
    await within(res.pump(col.sink), 3000, 'body');
    assert.equal(col.text(), 'all in one read');
    // and the connection is still good for the next GET
    assert.equal((await getText(c, srv.url('/b'))).body, 'all in one read');
    assert.equal(srv.sockets.length, 1);
  });

  test('…and when the server closes right after that answer', async () => {
    const srv = await rawServer(({ socket, path }) => {
      if (path === '/close-framed') socket.end(lengthAnswer('framed then closed', [['Connection', 'close']]));
      else if (path === '/close-unframed') socket.end('HTTP/1.1 200 OK\r\n\r\nread until close');
      else socket.end(lengthAnswer('framed, keep-alive, then closed'));
    });
    const c = client();
    const expected: Record<string, string> = {
      '/close-framed': 'framed then closed',
      '/close-unframed': 'read until close',
      '/close-keepalive': 'framed, keep-alive, then closed',
    };
    for (const [i, [path, text]] of Object.entries(expected).entries()) {
      const res = await within(c.get(srv.url(path), {}), 3000, path);
      // Every byte and the FIN are sent: the client gets them before pump().
      await srv.whenSent(i);
      const col = collectingSink();
      await within(res.pump(col.sink), 3000, path);
      assert.equal(col.text(), text, path);
    }
    // none of these connections can be reused; the next GET still works
    const res = await within(c.get(srv.url('/close-keepalive'), {}), 3000, 'again');
    await within(res.pump(() => {}), 3000, 'again');
    assert.equal(srv.sockets.length, 4);
  });
});

describe('TLS', () => {
  let dir: string;
  let ca: Buffer;
  let key: Buffer;
  let cert: Buffer;
  before(async () => {
    dir = await mkdtemp(join(tmpdir(), 'airlock-lean-tls-'));
    const authority = await makeCa(dir);
    const leaf = await makeServerCert(authority, { ips: ['127.0.0.1'], dns: [] });
    [ca, key, cert] = await Promise.all([readFile(authority.certFile), readFile(leaf.keyFile), readFile(leaf.certFile)]);
  });
  after(async () => {
    if (dir) await rm(dir, { recursive: true, force: true });
  });

  test('a multi-MiB body over TLS with the test CA arrives whole; the connection is reused', async () => {
    const body = randomBytes(6 * MiB + 3);
    const srv = await rawServer(({ socket, path }) => void socket.write(path === '/big' ? lengthAnswer(body) : lengthAnswer('small')), { key, cert });
    const hosts: string[] = [];
    const c = client(async () => ({ secureContext: createSecureContext({ ca }), rejectUnauthorized: true }));
    const c2 = new LeanHttp({
      tls: async (host) => {
        hosts.push(host);
        return { secureContext: createSecureContext({ ca }), rejectUnauthorized: true };
      },
    });
    cleanups.push(() => c2.close());
    for (const lean of [c, c2]) {
      const res = await within(lean.get(srv.url('/big'), {}), 3000, 'GET');
      const h = hashingSink();
      let calls = 0;
      // every other chunk waits: TLS may hand over records after a pause was asked for
      await within(res.pump((chunk) => (h.sink(chunk), ++calls % 2 === 0 ? new Promise<void>((r) => setImmediate(r)) : undefined)), 10_000, 'body');
      assert.equal(h.bytes(), body.length);
      assert.equal(h.digest(), sha(body));
      assert.equal((await getText(lean, srv.url('/small'))).body, 'small');
    }
    assert.equal(srv.sockets.length, 2, 'one connection per client');
    assert.deepEqual(hosts, [srv.url().host]);
  });

  test('aborted during the TLS handshake: AbortedError, the connection is closed', async () => {
    // a plain TCP server that never answers the ClientHello
    const srv = await rawServer(() => {});
    const c = client(async () => ({ secureContext: createSecureContext({ ca }), rejectUnauthorized: true }));
    const ac = new AbortController();
    const pending = c.get(new URL(srv.url().href.replace('http:', 'https:')), {}, ac.signal);
    // The ClientHello has arrived: the handshake is under way.
    await until(() => srv.sockets.length === 1 && srv.sockets[0]!.bytesRead > 0, 'the ClientHello', 2000);
    ac.abort();
    await assert.rejects(within(pending, 2000, 'GET'), ABORTED);
    await srv.whenClosed(0);
  });

  test('close() while the TLS settings are still being prepared: the GET is refused, no connection is made', async () => {
    const srv = await rawServer(({ socket }) => void socket.write(lengthAnswer('in time')), { key, cert });
    let prepared!: () => void;
    const settings = new Promise<void>((resolve) => (prepared = resolve));
    const c = client(async () => {
      await settings;
      return { secureContext: createSecureContext({ ca }), rejectUnauthorized: true };
    });
    const pending = c.get(srv.url(), {});
    c.close();
    prepared();
    await assert.rejects(within(pending, 2000, 'GET'), leanCode('LEAN_CLOSED'));
    // Another client's GET is the first and only connection the server sees.
    assert.equal((await getText(client(async () => ({ secureContext: createSecureContext({ ca }), rejectUnauthorized: true })), srv.url('/other'))).body, 'in time');
    assert.deepEqual(srv.requests.map((r) => [r.conn, r.path]), [[0, '/other']]);
  });

  test('a certificate the client does not trust: get rejects', async () => {
    const srv = await rawServer(({ socket }) => void socket.write(lengthAnswer('secret')), { key, cert });
    const c = client(async () => ({ secureContext: createSecureContext({}), rejectUnauthorized: true }));
    await assert.rejects(within(c.get(srv.url(), {}), 3000, 'GET'), (e: unknown) => {
      assert.match(String((e as { code?: string }).code), /CERT|SELF_SIGNED|UNABLE_TO_VERIFY|ISSUER/, String(e));
      return true;
    });
    assert.equal(srv.requests.length, 0);
  });
});

describe('close()', () => {
  test('close() destroys idle connections; get() afterwards is refused', async () => {
    const srv = await rawServer(({ socket }) => void socket.write(lengthAnswer('x')));
    const c = client();
    await getText(c, srv.url('/a'));
    assert.equal(srv.open(), 1);
    c.close();
    await srv.whenClosed(0);
    await assert.rejects(c.get(srv.url('/b'), {}), leanCode('LEAN_CLOSED'));
  });

  test('close() while a body is being pumped: pump rejects, the connection closes', async () => {
    const srv = await rawServer(async ({ socket }) => {
      await write(socket, head(200, [['Content-Length', MiB]]) + 'start');
    });
    const c = client();
    const res = await within(c.get(srv.url(), {}), 3000, 'GET');
    const h = hashingSink();
    const done = res.pump(h.sink);
    await until(() => h.bytes() === 5, 'first bytes', 2000);
    c.close();
    await assert.rejects(within(done, 2000, 'body'), leanCode('ECONNRESET'));
    await srv.whenClosed(0);
  });

  test('idle pooled connections do not keep a process alive', async () => {
    const srv = await rawServer(({ socket }) => void socket.write(lengthAnswer('hello from the pool')));
    const lean = fileURLToPath(new URL('../../src/registry/lean-http.ts', import.meta.url));
    // Never closes its pool: it must exit by itself all the same (the keep-alive timeout is 30 s).
    const script = [
      `import { LeanHttp } from ${JSON.stringify(lean)};`,
      `const c = new LeanHttp({ tls: async () => { throw new Error('plain'); } });`,
      `const res = await c.get(new URL(process.env.LEAN_URL), {});`,
      `let n = 0; await res.pump((chunk) => { n += chunk.length; });`,
      `console.log(String(n));`,
    ].join('\n');
    const child = spawn(process.execPath, ['--input-type=module', '-e', script], { env: { ...process.env, LEAN_URL: srv.url().href }, stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    let err = '';
    child.stdout.on('data', (d: Buffer) => (out += d.toString()));
    child.stderr.on('data', (d: Buffer) => (err += d.toString()));
    const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
    try {
      const code = await within(exited, 8000, 'child exit');
      assert.equal(code, 0, err);
      assert.equal(out.trim(), String('hello from the pool'.length));
      // the pooled connection was still open when the process ended
      assert.equal(srv.requests.length, 1);
      await srv.whenClosed(0);
    } finally {
      if (child.exitCode === null && child.signalCode === null && child.pid !== undefined) process.kill(child.pid, 'SIGKILL');
    }
  });
});
