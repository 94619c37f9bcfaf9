// A file the bundle carries (`files:` in airlock.yaml) as an OCI artifact, the shape `oras push`
// gives one: an image manifest with `artifactType`, the empty config, and one layer — the file's
// exact bytes, `application/octet-stream` — annotated with its name (org.opencontainers.image.title,
// which `oras pull` writes it under) and its mode. In the bundle it is named
// `localhost/files/<repository>:<tag>`, which push's mapping turns into `R/P/files/<repository>:<tag>`.
//
// The rules for names live here too, because every side needs them: lock refuses a name that is not
// safe, and extract and serve check again what a bundle claims (it may have been made by hand).
// Pure: no file system, no network.
import { IntegrityError } from '../core/errors.ts';
import { digestOf, isDigest, type Digest } from '../core/digest.ts';
import type { Descriptor } from '../core/manifest.ts';
import { MediaType } from '../core/media-types.ts';
import { isValidTag, parseReference } from '../core/reference.ts';
import { ARTIFACT_ANNOTATION } from '../helm/artifact-mark.ts';

/** The manifest's artifactType: what OCI tools (and the referrers API) show for a carried file. */
export const FILE_ARTIFACT_TYPE = 'application/vnd.airlock.file.v1';
/** The layer's media type: plain bytes, what `oras push NAME` gives a file with no type. */
export const FILE_LAYER_MEDIA_TYPE = 'application/octet-stream';
/** Where `oras pull` (and any OCI tool) reads the file's name. */
export const TITLE_ANNOTATION = 'org.opencontainers.image.title';
/** The file's permission bits, four octal digits (`0755`). */
export const MODE_ANNOTATION = 'dev.airlock.file.mode';
/** The spec's `version:` of the file, when it gives one. */
export const VERSION_ANNOTATION = 'org.opencontainers.image.version';
/** index.json's mark (ARTIFACT_ANNOTATION) on a carried file. */
export const FILE_ARTIFACT = 'file';
/** The pseudo-registry files are named under in the bundle (push maps it away, as for local charts). */
export const FILES_HOST = 'localhost';
/** The path files are named under, in the bundle and in a registry (`R/P/files/<name>`). */
export const FILES_PATH = 'files';
/** A file's mode when the spec gives none. */
export const DEFAULT_FILE_MODE = 0o644;
/** The longest name a file may have: what every Linux file system takes. */
export const MAX_FILE_NAME_BYTES = 255;

/** `{}`: the empty config of an artifact (OCI 1.1 image spec, "empty descriptor"). */
const EMPTY_CONFIG = Buffer.from('{}');
const EMPTY_DESCRIPTOR: Descriptor = { mediaType: MediaType.ociEmpty, digest: digestOf(EMPTY_CONFIG), size: EMPTY_CONFIG.length };

/**
 * Why `name` is not a safe file name, or undefined when it is. Safe: printable ASCII, no `/` or `\`,
 * no `..`, not starting with `.` (hidden, `.`, `..`) or `-` (read as an option by the commands that
 * handle it), no spaces at either end, at most 255 bytes, at least one letter or digit.
 */
export function fileNameProblem(name: unknown): string | undefined {
  if (typeof name !== 'string' || name === '') return 'a file name is needed';
  if (name.length > MAX_FILE_NAME_BYTES) return `it is ${name.length} characters long, more than ${MAX_FILE_NAME_BYTES}`;
  if (!/^[\x20-\x7e]*$/.test(name)) return 'only printable ASCII characters are allowed (no control characters, no non-ASCII)';
  if (name.includes('/') || name.includes('\\')) return 'it must be a plain file name, without / or \\';
  if (name.includes('..')) return 'it must not contain ".."';
  if (name.startsWith('.')) return 'it must not start with "." (hidden files, . and .. are refused)';
  if (name.startsWith('-')) return 'it must not start with "-" (commands would read it as an option)';
  if (name.trim() !== name) return 'it must not start or end with a space';
  if (!/[A-Za-z0-9]/.test(name)) return 'it needs at least one letter or digit';
  return undefined;
}

/**
 * A file's repository name under `files/`: the name lower-cased, each run of other characters
 * between letters and digits kept when OCI allows it there (`.`, `_`, `__`, dashes) and made `-`
 * otherwise, with none at either end. `install.sh` stays `install.sh`; `README.md` is `readme.md`.
 */
export function fileRepository(name: string): string {
  const parts = name.toLowerCase().split(/([a-z0-9]+)/);
  let out = '';
  // split with a capture group alternates: separator, alnum, separator, …, separator.
  for (let i = 1; i < parts.length; i += 2) {
    if (out !== '') {
      const sep = parts[i - 1]!;
      out += /^(?:[._]|__|-+)$/.test(sep) ? sep : '-';
    }
    out += parts[i];
  }
  return out;
}

/** The tag of a file: its version (`+` made `_`, as helm does for charts) when the spec gives one, else the first 12 hex digits of its sha256. */
export function fileTag(version: string | undefined, digest: Digest): string {
  if (version !== undefined) return version.replaceAll('+', '_');
  return digest.slice(digest.indexOf(':') + 1, digest.indexOf(':') + 13);
}

/** Why `version` cannot name a file's tag, or undefined when it can. */
export function fileVersionProblem(version: string): string | undefined {
  return isValidTag(version.replaceAll('+', '_')) ? undefined : 'a version must be letters, digits, and . _ - + (at most 128, not starting with . or -), e.g. v1.30.2+k3s1';
}

/** The file's name in the bundle: `localhost/files/<repository>:<tag>`. */
export function fileReference(name: string, tag: string): string {
  return `${FILES_HOST}/${FILES_PATH}/${fileRepository(name)}:${tag}`;
}

/** `0755` */
export function formatMode(mode: number): string {
  return `0${mode.toString(8).padStart(3, '0')}`;
}

/** `0755`, `755` or `0o755` → 0o755; undefined when it is not a mode airlock carries (permission bits only: no setuid, setgid or sticky bit). */
export function parseMode(text: string): number | undefined {
  const m = /^(?:0o?)?([0-7]{1,3})$/.exec(text.trim());
  return m ? parseInt(m[1]!, 8) : undefined;
}

/** What the artifact is built from: the file's name, bytes (digest and size), mode, and version. */
export interface FileArtifactInput {
  name: string;
  digest: Digest;
  size: number;
  mode: number;
  version?: string | undefined;
}

export interface FileArtifact {
  /** The manifest: its descriptor and exact bytes. */
  manifest: { descriptor: Descriptor; bytes: Buffer };
  config: { descriptor: Descriptor; bytes: Buffer };
  /** The file's bytes. */
  layer: Descriptor;
  /** `localhost/files/<repository>:<tag>` */
  reference: string;
  /** The descriptor index.json names it by: the manifest, marked as a file. */
  root: Descriptor;
}

/** The artifact for a file: the same input always gives the same bytes. */
export function buildFileArtifact(f: FileArtifactInput): FileArtifact {
  const layer: Descriptor = {
    mediaType: FILE_LAYER_MEDIA_TYPE,
    digest: f.digest,
    size: f.size,
    annotations: { [MODE_ANNOTATION]: formatMode(f.mode), [TITLE_ANNOTATION]: f.name },
  };
  const doc = {
    schemaVersion: 2,
    mediaType: MediaType.ociManifest,
    artifactType: FILE_ARTIFACT_TYPE,
    config: EMPTY_DESCRIPTOR,
    layers: [layer],
    ...(f.version !== undefined ? { annotations: { [VERSION_ANNOTATION]: f.version } } : {}),
  };
  const bytes = Buffer.from(JSON.stringify(doc));
  const descriptor: Descriptor = { mediaType: MediaType.ociManifest, digest: digestOf(bytes), size: bytes.length };
  return {
    manifest: { descriptor, bytes },
    config: { descriptor: EMPTY_DESCRIPTOR, bytes: EMPTY_CONFIG },
    layer,
    reference: fileReference(f.name, fileTag(f.version, f.digest)),
    root: { ...descriptor, annotations: { [ARTIFACT_ANNOTATION]: FILE_ARTIFACT } },
  };
}

/** A root of index.json marked as a carried file. */
export function isFileRoot(root: Pick<Descriptor, 'annotations'>): boolean {
  return root.annotations?.[ARTIFACT_ANNOTATION] === FILE_ARTIFACT;
}

/**
 * The file a bundle's artifact carries, read back from its manifest: the manifest must be exactly
 * what buildFileArtifact writes for the name, mode and version it states, under the name it is
 * carried by — so its one layer is the file, and nothing about it was changed by hand.
 */
export function readFileArtifact(reference: string, root: Descriptor, bytes: Buffer): FileArtifactInput & { reference: string } {
  const bad = (why: string): IntegrityError =>
    new IntegrityError(`${reference}: not a file airlock carries: ${why}`, { code: 'MANIFEST_INVALID', hint: 'the bundle was changed after packing, or not written by airlock' });
  let doc: { artifactType?: unknown; layers?: unknown; annotations?: Record<string, unknown> };
  try {
    doc = JSON.parse(bytes.toString('utf8')) as typeof doc;
  } catch {
    throw bad('its manifest is not JSON');
  }
  if (doc.artifactType !== FILE_ARTIFACT_TYPE) throw bad(`its artifactType is ${JSON.stringify(doc.artifactType)}, not ${FILE_ARTIFACT_TYPE}`);
  const layers = Array.isArray(doc.layers) ? (doc.layers as Descriptor[]) : [];
  const layer = layers[0];
  if (layers.length !== 1 || typeof layer !== 'object' || layer === null) throw bad('it must have exactly one layer');
  const name = layer.annotations?.[TITLE_ANNOTATION];
  const why = fileNameProblem(name);
  if (why !== undefined) throw bad(`its name ${JSON.stringify(name)?.slice(0, 80)} is not safe: ${why}`);
  const mode = parseMode(String(layer.annotations?.[MODE_ANNOTATION] ?? ''));
  if (mode === undefined) throw bad(`its mode ${JSON.stringify(layer.annotations?.[MODE_ANNOTATION])} is not four octal digits`);
  const version = doc.annotations?.[VERSION_ANNOTATION];
  if (version !== undefined && (typeof version !== 'string' || fileVersionProblem(version) !== undefined)) throw bad(`its version ${JSON.stringify(version)} cannot be a tag`);
  if (typeof layer.digest !== 'string' || !isDigest(layer.digest) || !layer.digest.startsWith('sha256:') || !Number.isSafeInteger(layer.size)) throw bad('its layer has no sha256 digest and size');
  const input: FileArtifactInput = { name: name as string, digest: layer.digest, size: layer.size, mode, ...(version !== undefined ? { version: version as string } : {}) };
  const rebuilt = buildFileArtifact(input);
  if (rebuilt.manifest.descriptor.digest !== root.digest) throw bad('its manifest is not the one airlock writes for this file');
  let ref: ReturnType<typeof parseReference>;
  try {
    ref = parseReference(reference);
  } catch {
    throw bad('its name in index.json is not a reference');
  }
  const expected = parseReference(rebuilt.reference);
  if (ref.registry !== expected.registry || ref.repository !== expected.repository || ref.tag !== expected.tag || ref.digest !== undefined) {
    throw bad(`index.json names it ${reference}; the file ${input.name} is carried as ${rebuilt.reference}`);
  }
  return { ...input, reference };
}
