// airlock as a library: the public API, and the only module a caller imports ('airlock'). Every
// verb takes its inputs, then one options object with `signal` (an AbortSignal), `session` (shared
// clients and settings; built and closed for the call when left out) and, where the verb reports
// progress, `onEvent`. Failures are typed errors (AirlockError and its subclasses, each with a
// stable `code` and the `exitCode` the CLI would exit with). Everything else under src/ is internal.

// Verbs, in the order of the flow.
export { discover, type DiscoverOptions, type DiscoverReport, type DiscoveredChart, type Finding, type Reason, type RemoteCheck, type WriteSpecResult } from './api/discover.ts';
export { lock, type LockOptions, type LockResult } from './api/lock.ts';
export { pack, type PackOptions, type PackResult } from './api/pack.ts';
export {
  verify,
  type VerifyOptions,
  type VerifyReport,
  type VerifyProblem,
  type VerifyDeltaReport,
  type VerifySignatureReport,
  type VolumeFileReport,
  type VolumeSetReport,
} from './api/verify.ts';
export { inspect, type InspectOptions, type BundleSummary, type BundleSummaryChart, type BundleSummaryFile, type BundleSummaryImage, type BundleSummaryTool } from './api/inspect.ts';
export { diff, type DiffOptions, type BundleDiff, type Changed, type DiffSideInfo, type ListDiff, type SideChart, type SideFile, type SideImage, type SideSigner, type SideTool } from './api/diff.ts';
export { report, type ReportOptions, type ReportResult, type ReportModel, type ReportFinding } from './api/report.ts';
export { approve, type ApproveOptions, type ApproveReport, type ApprovalStatement, type VerifiedApproval, type CarriedApproval } from './api/approve.ts';
export { repair, type RepairOptions, type RepairResult } from './api/repair.ts';
export { push, type PushOptions, type PushReport, type PushedImage } from './api/push.ts';
export { serve, type ServeOptions, type Server, type ServedFile, type ServedImage, type ServedTool, type AccessLogEntry } from './api/serve.ts';
export { capture, readCapture, type Capture, type CaptureOptions, type CaptureReport, type CaptureEvent, type ReadCaptureOptions, type PulledImage, type PullRecord, type UpstreamSummary, type CompareResult } from './api/capture.ts';
export { extractFiles, type ExtractFilesOptions, type ExtractFilesResult, type ExtractedFile } from './api/extract.ts';
export { exportImages, EXPORT_FORMATS, type ExportOptions, type ExportFormat, type ExportResult, type ExportedFile } from './api/export.ts';
export { mirrorsConfig, MIRRORS_FORMATS, type MirrorsConfigOptions, type MirrorsConfigResult, type MirrorsFormat } from './api/mirrors-config.ts';
export {
  rewrite,
  type RewriteOptions,
  type RewriteReport,
  type ImagePlace,
  type ImageStatus,
  type NotRedirected,
  type OverlayValue,
  type PostRenderFallback,
  type RewrittenImage,
} from './api/rewrite.ts';
export { postRender, type PostRenderOptions, type PostRenderResult, type MappedImage, type RemainingImage } from './api/post-render.ts';
export { audit, type AuditOptions, type AuditReport, type AuditFinding, type InternalEndpoint, type Severity } from './api/audit.ts';
export { netpol, type NetpolOptions, type NetpolReport, type NetworkPolicy } from './api/netpol.ts';
export { keygen, type KeygenOptions, type KeygenReport, type KeyAlgorithm } from './api/keygen.ts';
export { history, type HistoryReadOptions, type HistoryRead, type HistoryEntry, type HistoryRecord } from './api/history.ts';

// What every verb shares.
export { createSession, Session, type SessionOptions } from './api/session.ts';
export type { Credential, CredentialStore } from './registry/auth/credential.ts';
export { DEFAULT_CERTS_DIRS, DEFAULT_CONCURRENCY, defaultCacheDir } from './api/defaults.ts';
export type { BaseOptions, EventOptions, RenderOptions } from './api/options.ts';
export type { HistoryOptions } from './api/history-record.ts';
export type {
  AirlockEvent,
  AccessEvent,
  CopyEvent,
  DiscoverEvent,
  ExportEvent,
  ImageDoneEvent,
  PackEvent,
  ProgressEvent,
  PushEvent,
  PushStartEvent,
  RemoteCheckEvent,
  ServeEvent,
  VerifyEvent,
  WarningEvent,
} from './api/events.ts';

// Errors: one class per kind of failure, each with its exit code.
export {
  AirlockError,
  AbortedError,
  AuthError,
  ConflictError,
  IntegrityError,
  IoError,
  NetworkError,
  NotFoundError,
  RegistryError,
  UsageError,
  ERROR_CODES,
  ExitCode,
  isAirlockError,
  type CodeOf,
  type ErrorCode,
  type ExitCodeName,
  type OciErrorEntry,
} from './core/errors.ts';

// The values results are made of.
export type { Descriptor } from './core/manifest.ts';
export type { Digest } from './core/digest.ts';
export type { Reference } from './core/reference.ts';
export type { Lock, LockedChart, LockedChartDependency, LockedImage, LockedPlatform } from './spec/lock.ts';
export type { Inventory, InventoryBlob, InventoryDelta, InventoryImage, InventoryPlatform, SignatureInfo, VolumeLayout } from './bundle/format.ts';
