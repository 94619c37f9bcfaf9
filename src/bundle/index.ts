// The bundle: one deterministic tar holding an OCI image layout plus airlock's metadata.
// write → read (ReadOnlyStorage over the tar or its volumes, no extraction) → verify / inspect;
// deltas (plan.ts), volumes (volumes.ts), recovery volumes (parity.ts, repair.ts), signatures,
// carried tools (tools.ts).
export {
  BUNDLE_FORMAT_VERSION,
  BUNDLE_INFO_PATH,
  INVENTORY_PATH,
  LOCK_PATH,
  OCI_LAYOUT_PATH,
  INDEX_PATH,
  SIGNATURE_PATH,
  SIGNATURE_INFO_PATH,
  VOLUMES_PATH,
  REF_NAME_ANNOTATION,
  CONTAINERD_NAME_ANNOTATION,
  blobPath,
  toolPath,
  TOOLS_DIR,
  allBlobs,
  type BundleInfo,
  type Inventory,
  type InventoryBlob,
  type InventoryDelta,
  type InventoryImage,
  type InventoryPlatform,
  type InventoryTool,
  type SignatureInfo,
  type VolumeLayout,
} from './format.ts';
export { writeBundle, type BundleImageInput, type DeltaBase, type WriteBundleOptions, type WriteBundleResult } from './write.ts';
export { openBundle, Bundle, type BundleEntry, type BundleImage, type BundleSignature, type OpenBundleOptions } from './read.ts';
export {
  verifyBundle,
  type VerifyBundleOptions,
  type VerifyDeltaReport,
  type VerifyProblem,
  type VerifyReport,
  type VerifySignatureReport,
} from './verify.ts';
export { inspectBundle, type BundleSummary, type BundleSummaryChart, type BundleSummaryImage, type BundleSummaryTool } from './inspect.ts';
export { hashFile, inventoryTools, type ToolFile } from './tools.ts';
export { repairBundle, type RepairOptions, type RepairResult } from './repair.ts';
export { checkVolumes, describeVolumeProblems, type VolumeFileReport, type VolumeSetReport } from './volume-check.ts';
export { groupBundlePaths, locateBundle, MIN_VOLUME_SIZE, parseSize, parityName, volumeName, type BundleFiles } from './volumes.ts';
export { deltaBaseOf, loadDeltaBase } from './delta.ts';
export { signatureStatus, verifySignature, type SignatureStatus } from './sign.ts';
