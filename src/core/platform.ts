// Platforms (`os/arch[/variant]`) as written in airlock.yaml and in index descriptors.
import { UsageError } from './errors.ts';

export interface Platform {
  architecture: string;
  os: string;
  variant?: string;
  'os.version'?: string;
  'os.features'?: string[];
}

const PART = /^[a-z0-9_.-]+$/;

/** Parse `linux/amd64`, `linux/arm64/v8`. */
export function parsePlatform(input: string): Platform {
  const parts = input.split('/');
  if (parts.length < 2 || parts.length > 3 || !parts.every((p) => PART.test(p))) {
    throw new UsageError(`invalid platform "${input}": expected os/architecture[/variant], e.g. linux/amd64 or linux/arm64/v8`, {
      code: 'PLATFORM_INVALID',
    });
  }
  const [os, architecture, variant] = parts as [string, string, string | undefined];
  return variant === undefined ? { os, architecture } : { os, architecture, variant };
}

export function formatPlatform(p: Pick<Platform, 'os' | 'architecture' | 'variant'>): string {
  return `${p.os}/${p.architecture}${p.variant ? `/${p.variant}` : ''}`;
}

/** Default variants as containerd normalises them (arm64 → v8, arm → v7). */
function normalizedVariant(p: Pick<Platform, 'architecture' | 'variant'>): string | undefined {
  if (p.variant) return p.variant;
  if (p.architecture === 'arm64') return 'v8';
  if (p.architecture === 'arm') return 'v7';
  return undefined;
}

/** Does a descriptor's platform satisfy a wanted one? A wanted platform without variant matches any variant. */
export function platformMatches(have: Pick<Platform, 'os' | 'architecture' | 'variant'>, want: Pick<Platform, 'os' | 'architecture' | 'variant'>): boolean {
  if (have.os !== want.os || have.architecture !== want.architecture) return false;
  if (!want.variant) return true;
  return normalizedVariant(have) === normalizedVariant(want);
}
