// A running capture: the relay (relay.ts) bound to a socket by serve's adapter, its records
// appended to the record file and summed up as they come, and on stop the graceful end the
// issue asks for: no new connections, answers in flight finish (up to the drain time, then they
// are cut and recorded as incomplete), the record flushed, the spec written.
import { resolve } from 'node:path';
import { UsageError } from '../core/errors.ts';
import { DOCKER_HUB, isValidRegistry } from '../core/reference.ts';
import type { RemoteRepository } from '../registry/repository.ts';
import { bindHandler, loadTlsPair, parseListen } from '../serve/server.ts';
import type { AccessLogEntry } from '../serve/server.ts';
import { createRelay } from './relay.ts';
import { PullLedger, type CaptureSummary } from './pulled.ts';
import { RecordWriter, type PullRecord } from './record.ts';
import { writeCapturedToSpec, type WriteSpecResult } from './write-spec.ts';

export interface StartCaptureOptions {
  repository(ref: { registry: string; repository: string }): RemoteRepository;
  /** `[HOST]:PORT`; port 0 picks a free one. */
  listen: string;
  tlsCert?: string | undefined;
  tlsKey?: string | undefined;
  /** Where requests without `?ns=` go (default docker.io, as Docker's registry-mirrors). */
  defaultRegistry?: string | undefined;
  /** Append every record to this NDJSON file. */
  record?: string | undefined;
  /** On stop, merge the images pulled into this spec. */
  write?: string | undefined;
  onRecord?: ((r: PullRecord) => void) | undefined;
  onAccess?: ((e: AccessLogEntry) => void) | undefined;
  /** Answers in flight at once (default 64). */
  maxConcurrent?: number | undefined;
  /** How long a stop waits for answers in flight (default 30 s: a layer may be large). */
  drainTimeoutMs?: number | undefined;
}

export interface CaptureStopResult {
  summary: CaptureSummary;
  /** The spec merge (`write`). */
  spec?: WriteSpecResult | undefined;
  /** The record file (absolute), when one was kept. */
  record?: string | undefined;
}

export interface RunningCapture {
  url: string;
  address: string;
  port: number;
  tls: boolean;
  defaultRegistry: string;
  /** What was captured so far. */
  summary(): CaptureSummary;
  /** Graceful stop; idempotent (every call gets the one result). */
  stop(): Promise<CaptureStopResult>;
}

export async function startCapture(opts: StartCaptureOptions): Promise<RunningCapture> {
  const listen = parseListen(opts.listen);
  const defaultRegistry = opts.defaultRegistry ?? DOCKER_HUB;
  if (!isValidRegistry(defaultRegistry)) {
    throw new UsageError(`invalid upstream registry "${defaultRegistry}": expected HOST[:PORT]`, { code: 'REFERENCE_INVALID', hint: 'e.g. --upstream docker.io or --upstream registry.example.com:5000' });
  }
  const tls = await loadTlsPair(opts.tlsCert, opts.tlsKey);
  const recordPath = opts.record === undefined ? undefined : resolve(opts.record);
  const writer = recordPath === undefined ? undefined : await RecordWriter.open(recordPath);
  const ledger = new PullLedger();
  const upstreamStop = new AbortController();
  const relay = createRelay({
    repository: (ref) => opts.repository(ref),
    defaultRegistry,
    signal: upstreamStop.signal,
    onRecord: (r) => {
      ledger.add(r);
      writer?.write(r);
      opts.onRecord?.(r);
    },
  });
  let bound;
  try {
    bound = await bindHandler(relay, {
      listen: opts.listen,
      parsedListen: listen,
      tls,
      maxConcurrent: opts.maxConcurrent,
      drainTimeoutMs: opts.drainTimeoutMs ?? 30_000,
      onAccess: opts.onAccess,
    });
  } catch (e) {
    await writer?.close().catch(() => {});
    throw e;
  }
  writer?.write({ type: 'capture-start', time: new Date().toISOString(), url: bound.url, defaultRegistry });

  let stopping: Promise<CaptureStopResult> | undefined;
  const stop = (): Promise<CaptureStopResult> => {
    stopping ??= (async () => {
      try {
        await bound.close();
        await new Promise<void>((r) => setImmediate(r));
      } finally {
        // Answers cut by the drain have recorded themselves by now; anything still waiting upstream gives up.
        upstreamStop.abort();
        await writer?.close();
      }
      const summary = ledger.summary();
      const spec = opts.write === undefined ? undefined : await writeCapturedToSpec(resolve(opts.write), summary.images);
      return { summary, ...(spec ? { spec } : {}), ...(recordPath ? { record: recordPath } : {}) };
    })();
    return stopping;
  };
  return { url: bound.url, address: bound.address, port: bound.port, tls: bound.tls, defaultRegistry, summary: () => ledger.summary(), stop };
}
