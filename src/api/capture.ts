// capture: a read-only pull-through mirror for a staging cluster's nodes that records every
// manifest and blob they pull (from the upstream each request names), and turns what was pulled
// into the spec. readCapture reads a record back; both compare with a discovery on request.
import { resolve } from 'node:path';
import { startCapture, type CaptureStopResult } from '../capture/capture.ts';
import { compareWithDiscovery, readPredicted, type CompareResult } from '../capture/compare.ts';
import { readRecord, type PullOutcome, type PullRecord } from '../capture/record.ts';
import { summarize, type CaptureSummary, type PulledImage, type UpstreamSummary } from '../capture/pulled.ts';
import { writeCapturedToSpec } from '../capture/write-spec.ts';
import type { AccessLogEntry } from '../serve/server.ts';
import type { WarningEvent } from './events.ts';
import type { BaseOptions } from './options.ts';
import { Session } from './session.ts';
import type { WriteSpecResult } from '../discover/write-spec.ts';

export type { CaptureSummary, CompareResult, PulledImage, PullOutcome, PullRecord, UpstreamSummary };

/** capture: one manifest or blob answered (the record line), or one HTTP request (`access`). */
export type CaptureEvent = PullRecord | ({ type: 'access' } & AccessLogEntry) | WarningEvent;

export interface CaptureOptions extends BaseOptions {
  /** `[HOST]:PORT`, `PORT` or `[::1]:PORT` (default `:5000`: every address); port 0 picks a free one. */
  listen?: string | undefined;
  tlsCert?: string | undefined;
  tlsKey?: string | undefined;
  /** The registry of requests that do not name one with `?ns=` (default docker.io). */
  upstream?: string | undefined;
  /** Append the raw record (NDJSON, one line per manifest or blob answered) to this file. */
  record?: string | undefined;
  /** On stop, merge every image pulled into this spec, pinned by the digest served. */
  write?: string | undefined;
  /** On stop, compare what was pulled with this discovery (`airlock discover --json` output, or its plain list). */
  compare?: string | undefined;
  onEvent?: ((event: CaptureEvent) => void) | undefined;
}

export interface CaptureReport extends CaptureSummary {
  spec?: WriteSpecResult | undefined;
  record?: string | undefined;
  compare?: CompareResult | undefined;
}

/** A running capture. stop() (or the signal) ends it gracefully and gives the report. */
export interface Capture extends AsyncDisposable {
  url: string;
  address: string;
  port: number;
  tls: boolean;
  /** Where requests without `?ns=` go. */
  upstream: string;
  /** What was captured so far. */
  summary(): CaptureSummary;
  /** Stop listening, let answers in flight finish, flush the record, write the spec. Idempotent. */
  stop(): Promise<CaptureReport>;
}

/** Start a capture; resolves once listening. */
export async function capture(options: CaptureOptions = {}): Promise<Capture> {
  const own = options.session === undefined;
  const session = options.session ?? new Session();
  const onEvent = options.onEvent ?? (() => {});
  // Fail on a bad discovery before listening, not after a whole staging run.
  const predicted = options.compare !== undefined ? await readPredicted(resolve(options.compare)) : undefined;
  let running;
  try {
    running = await startCapture({
      repository: (ref) => session.repository(ref),
      listen: options.listen ?? ':5000',
      tlsCert: options.tlsCert,
      tlsKey: options.tlsKey,
      defaultRegistry: options.upstream,
      record: options.record,
      write: options.write,
      onRecord: (r) => onEvent(r),
      onAccess: (e) => onEvent({ type: 'access', ...e }),
    });
  } catch (e) {
    if (own) await session.close();
    throw e;
  }
  let stopping: Promise<CaptureReport> | undefined;
  const stop = (): Promise<CaptureReport> => {
    stopping ??= (async () => {
      let result: CaptureStopResult;
      try {
        result = await running.stop();
      } finally {
        if (own) await session.close();
      }
      const compare = predicted !== undefined ? compareWithDiscovery(result.summary.images, predicted) : undefined;
      return { ...result.summary, spec: result.spec, record: result.record, ...(compare ? { compare } : {}) };
    })();
    return stopping;
  };
  options.signal?.addEventListener('abort', () => void stop().catch(() => {}), { once: true });
  return {
    url: running.url,
    address: running.address,
    port: running.port,
    tls: running.tls,
    upstream: running.defaultRegistry,
    summary: () => running.summary(),
    stop,
    [Symbol.asyncDispose]: async () => {
      await stop();
    },
  };
}

export interface ReadCaptureOptions {
  /** Merge the images of the record into this spec. */
  write?: string | undefined;
  /** Compare with this discovery. */
  compare?: string | undefined;
}

/** What a record file (`capture --record`) holds: the same report a live capture gives at its end. */
export async function readCapture(record: string, options: ReadCaptureOptions = {}): Promise<CaptureReport> {
  const path = resolve(record);
  const summary = summarize(await readRecord(path));
  const predicted = options.compare !== undefined ? await readPredicted(resolve(options.compare)) : undefined;
  const spec = options.write !== undefined ? await writeCapturedToSpec(resolve(options.write), summary.images) : undefined;
  return { ...summary, record: path, ...(spec ? { spec } : {}), ...(predicted ? { compare: compareWithDiscovery(summary.images, predicted) } : {}) };
}
