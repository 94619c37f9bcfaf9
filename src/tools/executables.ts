// The airlock executable for a platform, for a bundle to carry (pack --with-tools). A stand-in for
// the executable build: $AIRLOCK_TOOLS_DIR/airlock-<os>-<arch>, else dist/airlock-<os>-<arch> of
// this checkout (what `npm run build:exe` writes), else none.
import { stat } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

/** Path of the airlock executable for `platform` (e.g. `linux/amd64`), or undefined when there is none. */
export async function toolExecutable(platform: string): Promise<string | undefined> {
  if (!/^[a-z0-9]+\/[a-z0-9]+$/.test(platform)) return undefined;
  const name = `airlock-${platform.replace('/', '-')}`;
  const dir = process.env.AIRLOCK_TOOLS_DIR;
  if (dir) {
    const p = join(resolve(dir), name);
    if (await isFile(p)) return p;
  }
  const p = fileURLToPath(new URL(`../../dist/${name}`, import.meta.url));
  return (await isFile(p)) ? p : undefined;
}

async function isFile(path: string): Promise<boolean> {
  return (await stat(path).catch(() => undefined))?.isFile() === true;
}
