// The platforms airlock builds executables for, and so the ones a bundle can carry it for.
import { UsageError } from '../core/errors.ts';

export const TOOL_PLATFORMS: readonly string[] = ['linux/amd64', 'linux/arm64'];

/** `os/arch` of this machine as image platforms name it (x64 → amd64). */
export function runningPlatform(): string {
  const arch = process.arch === 'x64' ? 'amd64' : process.arch;
  return `${process.platform}/${arch}`;
}

/**
 * Tool platforms as given (`linux/amd64,linux/arm64`, comma-separated or repeated): each one
 * airlock builds for, sorted, once each. `what` names where they come from in errors.
 */
export function parseToolPlatforms(values: readonly string[], what: string): string[] {
  const out = new Set<string>();
  for (const v of values) {
    for (const raw of v.split(',')) {
      const p = raw.trim();
      if (p === '') continue;
      if (!TOOL_PLATFORMS.includes(p)) {
        throw new UsageError(`${what}: "${p}" is not a platform airlock has an executable for (${TOOL_PLATFORMS.join(', ')})`, { code: 'TOOL_PLATFORM_INVALID' });
      }
      out.add(p);
    }
  }
  if (out.size === 0) throw new UsageError(`${what}: no platform given; expected e.g. ${TOOL_PLATFORMS.join(',')}`, { code: 'TOOL_PLATFORM_INVALID' });
  return [...out].sort();
}
