// Images a chart lists in its Chart.yaml annotations (pure). `helm.sh/images` (HIP-0015) and
// `artifacthub.io/images` hold a YAML list of `{name, image}` entries (HIP-0015 adds an optional
// `condition`); the plain `images` annotation has the same shape. Plain strings are accepted too.
import { parse } from 'yaml';
import { imageFromField } from './image-rules.ts';

export interface AnnotationImage {
  reference: string;
  /** The annotation key: `helm.sh/images`, `artifacthub.io/images`, `images`. */
  key: string;
  index: number;
  name?: string;
  /** HIP-0015: a values path; the image is needed only when it is true. */
  condition?: string;
}

/** Does this annotation list images the chart needs (rather than describe them)? */
export function isImageListAnnotation(key: string): boolean {
  return key === 'images' || key.endsWith('/images');
}

/** HIP-0015 says an unconditional `helm.sh/images` entry is needed; other lists are informational. */
export function isAuthoritativeImageList(key: string): boolean {
  return key === 'helm.sh/images' || key.endsWith('.helm.sh/images');
}

export function imagesFromAnnotations(annotations: Record<string, unknown>, chart: string): { images: AnnotationImage[]; warnings: string[] } {
  const images: AnnotationImage[] = [];
  const warnings: string[] = [];
  for (const [key, raw] of Object.entries(annotations)) {
    if (!isImageListAnnotation(key) || typeof raw !== 'string') continue;
    let list: unknown;
    try {
      list = parse(raw);
    } catch (e) {
      warnings.push(`chart ${chart}: annotation ${key} is not valid YAML (${(e as Error).message.split('\n')[0]}); ignored`);
      continue;
    }
    if (!Array.isArray(list)) {
      warnings.push(`chart ${chart}: annotation ${key} is not a YAML list of {name, image}; ignored`);
      continue;
    }
    list.forEach((entry, index) => {
      const o = typeof entry === 'object' && entry !== null ? (entry as Record<string, unknown>) : undefined;
      const text = typeof entry === 'string' ? entry : o?.image;
      const reference = imageFromField(typeof text === 'string' ? text.trim() : text);
      if (reference === undefined) {
        warnings.push(`chart ${chart}: annotation ${key}[${index}] ${JSON.stringify(text)} is not an image reference; ignored`);
        return;
      }
      const img: AnnotationImage = { reference, key, index };
      if (typeof o?.name === 'string') img.name = o.name;
      if (typeof o?.condition === 'string' && o.condition.trim() !== '') img.condition = o.condition.trim();
      images.push(img);
    });
  }
  return { images, warnings };
}
