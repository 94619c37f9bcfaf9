// Where the airlock executable for a platform is (`npm run build:exe` makes them): what a bundle
// can carry so the tool that opens it crosses the gap with it.
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { runningPlatform } from '../build-info.ts';
import { isExecutable } from '../util/executable.ts';
import { isExecutableFile } from '../util/run-process.ts';

/** The platforms there are executables for, and each one's file name (as in dist/). */
export const TOOL_EXECUTABLES: Readonly<Record<string, string>> = {
  'linux/amd64': 'airlock-linux-amd64',
  'linux/arm64': 'airlock-linux-arm64',
};

/**
 * The path of the airlock executable for `platform` ('linux/amd64' or 'linux/arm64'), or undefined
 * when there is none here:
 * - with $AIRLOCK_TOOLS_DIR set: airlock-<os>-<arch> in that folder, and nothing else (the user
 *   said where the executables are);
 * - the executable that runs now, when airlock runs as one and `platform` is its own;
 * - else, from an executable, the other platform's beside it under its dist/ name
 *   (airlock-linux-arm64 next to airlock-linux-amd64, as `npm run build:exe` leaves them);
 * - else, from the sources (or the package's dist/), dist/airlock-linux-<arch> of this checkout
 *   once `npm run build:exe` has made it.
 * Only that the file is there and executable is checked; what it holds is the caller's to record.
 */
export async function toolExecutable(platform: string, opts: { distDir?: string } = {}): Promise<string | undefined> {
  const file = Object.hasOwn(TOOL_EXECUTABLES, platform) ? TOOL_EXECUTABLES[platform] : undefined;
  if (file === undefined) return undefined;
  const dir = process.env.AIRLOCK_TOOLS_DIR;
  if (dir) {
    const named = join(resolve(dir), file);
    return (await isExecutableFile(named)) ? named : undefined;
  }
  if (isExecutable()) {
    if (platform === runningPlatform()) return process.execPath;
    const beside = join(opts.distDir ?? dirname(process.execPath), file);
    return (await isExecutableFile(beside)) ? beside : undefined;
  }
  // src/tools/ in the sources, dist/tools/ in the package: the checkout's dist/ is two folders up.
  const dist = opts.distDir ?? fileURLToPath(new URL('../../dist/', import.meta.url));
  const built = join(dist, file);
  return (await isExecutableFile(built)) ? built : undefined;
}
