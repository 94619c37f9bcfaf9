// Output for humans and machines: a live progress display on a terminal (bytes, rate, ETA, per
// image), plain lines when not a terminal, NDJSON events with --json, nothing but errors with --quiet.
// All progress goes to stderr; results go to stdout.
import type { CopyEvent } from '../copy.ts';
import { formatBytes } from '../core/bytes.ts';

export { formatBytes };

export type OutputMode = 'tty' | 'plain' | 'json' | 'quiet';

export interface OutputOptions {
  json?: boolean;
  quiet?: boolean;
  stdout?: NodeJS.WriteStream;
  stderr?: NodeJS.WriteStream;
}

interface ImageProgress {
  name: string;
  total: number;
  done: number;
  blobsDone: number;
  blobsSkipped: number;
  /** Blobs of this image in flight now: only those images get a live line. */
  active: number;
  finished: boolean;
}

export class Output {
  readonly mode: OutputMode;
  readonly #out: NodeJS.WriteStream;
  readonly #err: NodeJS.WriteStream;
  #images = new Map<string, ImageProgress>();
  #label = '';
  #total = 0;
  #done = 0;
  #started = Date.now();
  #timer: NodeJS.Timeout | undefined;
  #drawnLines = 0;
  #samples: { t: number; bytes: number }[] = [];

  constructor(opts: OutputOptions = {}) {
    this.#out = opts.stdout ?? process.stdout;
    this.#err = opts.stderr ?? process.stderr;
    this.mode = opts.json ? 'json' : opts.quiet ? 'quiet' : this.#err.isTTY && process.env.TERM !== 'dumb' ? 'tty' : 'plain';
  }

  /** A human line on stderr (not in json/quiet modes). */
  info(line: string): void {
    if (this.mode === 'json' || this.mode === 'quiet') return;
    this.#clear();
    this.#err.write(`${line}\n`);
    this.#draw();
  }

  /** An NDJSON event on stdout in json mode. */
  event(e: Record<string, unknown>): void {
    if (this.mode === 'json') this.#out.write(`${JSON.stringify(e)}\n`);
  }

  /** A library warning (the work went on): on stderr (not with --quiet, which shows errors only), and as an event in json mode. */
  warning(e: { code: string; message: string }): void {
    if (this.mode === 'quiet') return;
    this.#clear();
    this.#err.write(`airlock: warning: ${e.message}\n`);
    this.#draw();
    this.event({ type: 'warning', code: e.code, message: e.message });
  }

  /** The command's result: JSON on stdout in json mode, else the given human text on stdout (nothing with --quiet). */
  result(json: Record<string, unknown>, human: string): void {
    this.stop();
    if (this.mode === 'json') this.#out.write(`${JSON.stringify({ type: 'result', ...json })}\n`);
    else if (this.mode !== 'quiet') this.#write(human);
  }

  /**
   * A result whose text is the command's product for a pipe (YAML, a config file), not a report:
   * printed with --quiet too, which silences messages, not what was asked for.
   */
  data(json: Record<string, unknown>, text: string): void {
    this.stop();
    if (this.mode === 'json') this.#out.write(`${JSON.stringify({ type: 'result', ...json })}\n`);
    else this.#write(text);
  }

  #write(text: string): void {
    if (text !== '') this.#out.write(text.endsWith('\n') ? text : `${text}\n`);
  }

  /** Start a progress phase over `total` bytes. */
  begin(label: string, total: number): void {
    this.#label = label;
    this.#total = total;
    this.#done = 0;
    this.#started = Date.now();
    this.#samples = [];
    this.#images.clear();
    this.event({ type: 'phase', phase: label, totalBytes: total });
    if (this.mode === 'plain') this.#err.write(total > 0 ? `${label}: ${formatBytes(total)}\n` : `${label}…\n`);
    if (this.mode === 'tty' && !this.#timer) {
      this.#timer = setInterval(() => this.#redraw(), 100);
      this.#timer.unref();
    }
  }

  /** Declare an image with its byte total so per-image lines can show progress. */
  image(name: string, total: number): void {
    this.#images.set(name, { name, total, done: 0, blobsDone: 0, blobsSkipped: 0, active: 0, finished: false });
  }

  copy(e: CopyEvent): void {
    const img = this.#images.get(e.image) ?? { name: e.image, total: 0, done: 0, blobsDone: 0, blobsSkipped: 0, active: 0, finished: false };
    this.#images.set(e.image, img);
    if (e.type === 'blob-progress') {
      img.done += e.bytes;
      this.#done += e.bytes;
      return; // too frequent for NDJSON; totals are reported per blob
    }
    if (e.type === 'blob-start') img.active++;
    if (e.type === 'blob-done') {
      if (e.how === 'copied') {
        img.blobsDone++;
        img.active = Math.max(0, img.active - 1);
      }
      else {
        img.blobsSkipped++;
        img.done += e.size;
        this.#done += e.size;
      }
    }
    this.event({ ...e });
  }

  imageDone(name: string, line: string): void {
    const img = this.#images.get(name);
    if (img) img.finished = true;
    this.event({ type: 'image-done', image: name });
    if (this.mode === 'plain') this.#err.write(`${line}\n`);
    else if (this.mode === 'tty') this.info(line);
  }

  progress(done: number, total: number): void {
    this.#done = done;
    this.#total = total;
  }

  stop(): void {
    if (this.#timer) clearInterval(this.#timer);
    this.#timer = undefined;
    this.#clear();
  }

  #rate(): number {
    const now = Date.now();
    this.#samples.push({ t: now, bytes: this.#done });
    while (this.#samples.length > 2 && now - this.#samples[0]!.t > 5000) this.#samples.shift();
    const first = this.#samples[0]!;
    const dt = (now - first.t) / 1000;
    return dt > 0.2 ? (this.#done - first.bytes) / dt : 0;
  }

  #redraw(): void {
    this.#clear();
    this.#draw();
  }

  #draw(): void {
    if (this.mode !== 'tty' || !this.#timer) return;
    const rate = this.#rate();
    const eta = rate > 0 && this.#total > this.#done ? (this.#total - this.#done) / rate : 0;
    const width = Math.max(40, (this.#err.columns ?? 80) - 1);
    const lines: string[] = [];
    const active = [...this.#images.values()].filter((i) => !i.finished && i.active > 0).slice(0, 6);
    for (const i of active) {
      lines.push(truncate(`  ${i.name}  ${formatBytes(i.done)}${i.total ? ` / ${formatBytes(i.total)}` : ''}`, width));
    }
    const pct = this.#total > 0 ? Math.min(100, Math.floor((this.#done / this.#total) * 100)) : 0;
    lines.push(truncate(`${this.#label} ${bar(pct)} ${pct}%  ${formatBytes(this.#done)} / ${formatBytes(this.#total)}  ${formatBytes(rate)}/s  ETA ${formatDuration(eta)}`, width));
    this.#err.write(lines.join('\n') + '\n');
    this.#drawnLines = lines.length;
  }

  #clear(): void {
    if (this.mode !== 'tty' || this.#drawnLines === 0) return;
    this.#err.write(`\x1b[${this.#drawnLines}A\x1b[0J`);
    this.#drawnLines = 0;
  }
}

function bar(pct: number): string {
  const n = Math.round(pct / 5);
  return `[${'#'.repeat(n)}${'.'.repeat(20 - n)}]`;
}

function truncate(s: string, width: number): string {
  return s.length > width ? `${s.slice(0, width - 1)}…` : s;
}

export function formatDuration(seconds: number): string {
  if (!Number.isFinite(seconds) || seconds <= 0) return '--';
  const s = Math.round(seconds);
  return s >= 60 ? `${Math.floor(s / 60)}m${String(s % 60).padStart(2, '0')}s` : `${s}s`;
}

/** Left-aligned columns for human tables. */
export function table(rows: string[][]): string {
  const widths: number[] = [];
  for (const r of rows) r.forEach((c, i) => (widths[i] = Math.max(widths[i] ?? 0, c.length)));
  return rows.map((r) => r.map((c, i) => (i === r.length - 1 ? c : c.padEnd(widths[i]!))).join('  ')).join('\n');
}

/** "1 image", "2 images", "0 images"; irregular plurals given: count(3, 'registry', 'registries'). */
export function count(n: number, noun: string, plural = `${noun}s`): string {
  return `${n} ${n === 1 ? noun : plural}`;
}
