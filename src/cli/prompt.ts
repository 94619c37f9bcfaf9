// Reading a secret the way docker login does: from stdin when asked (--password-stdin), or typed at
// a terminal without echo. Never from an argument unless the user insists (-p, with a warning).
import { UsageError } from '../core/errors.ts';

/** A password is a few hundred bytes at most; this only stops `cat bigfile |` from being read whole. */
const MAX_STDIN_BYTES = 64 * 1024;

/** All of stdin, without the one line ending `echo` or a file adds (docker trims "\n" then "\r"). */
export async function readSecretFromStdin(stdin: NodeJS.ReadableStream = process.stdin): Promise<string> {
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const c of stdin) {
    const b = Buffer.isBuffer(c) ? c : Buffer.from(c as string);
    size += b.length;
    if (size > MAX_STDIN_BYTES) throw new UsageError(`the password on stdin is longer than ${MAX_STDIN_BYTES} bytes`, { hint: 'pipe the password alone: echo "$PASSWORD" | airlock login …' });
    chunks.push(b);
  }
  let text = Buffer.concat(chunks).toString('utf8');
  if (text.endsWith('\n')) text = text.slice(0, -1);
  if (text.endsWith('\r')) text = text.slice(0, -1);
  return text;
}

/** Ask on the terminal (stderr), echoing the answer or not. Ctrl-C aborts with an interrupt. */
export async function promptLine(question: string, opts: { echo: boolean }): Promise<string> {
  const stdin = process.stdin;
  process.stderr.write(question);
  const raw = !opts.echo && stdin.isTTY;
  if (raw) stdin.setRawMode(true);
  stdin.resume();
  try {
    return await new Promise<string>((resolve, reject) => {
      let text = '';
      const onData = (d: Buffer): void => {
        for (const ch of d.toString('utf8')) {
          if (ch === '\n' || ch === '\r' || ch === '\u0004') {
            stdin.off('data', onData);
            process.stderr.write('\n');
            resolve(text);
            return;
          }
          if (ch === '\u0003') {
            stdin.off('data', onData);
            process.stderr.write('\n');
            reject(new UsageError('login cancelled', { code: 'USAGE' }));
            return;
          }
          if (ch === '\u007f' || ch === '\b') text = text.slice(0, -1);
          else text += ch;
        }
      };
      stdin.on('data', onData);
    });
  } finally {
    if (raw) stdin.setRawMode(false);
    stdin.pause();
  }
}
