// The bundle: one deterministic tar holding an OCI image layout plus airlock's metadata.
// write → read (ReadOnlyStorage over the tar, no extraction) → verify / inspect.
export {
  BUNDLE_FORMAT_VERSION,
  BUNDLE_INFO_PATH,
  INVENTORY_PATH,
  LOCK_PATH,
  OCI_LAYOUT_PATH,
  INDEX_PATH,
  REF_NAME_ANNOTATION,
  CONTAINERD_NAME_ANNOTATION,
  blobPath,
  type BundleInfo,
  type Inventory,
  type InventoryBlob,
  type InventoryImage,
  type InventoryPlatform,
} from './format.ts';
export { writeBundle, type BundleImageInput, type WriteBundleOptions, type WriteBundleResult } from './write.ts';
export { openBundle, Bundle, type BundleEntry, type BundleImage, type OpenBundleOptions } from './read.ts';
export { verifyBundle, type VerifyBundleOptions, type VerifyProblem, type VerifyReport } from './verify.ts';
export { inspectBundle, type BundleSummary, type BundleSummaryChart, type BundleSummaryImage } from './inspect.ts';
