import { ExitCode, UsageError } from '../../core/errors.ts';
import { extractFiles } from '../../api/extract.ts';
import { formatBytes, table } from '../output.ts';
import { defineCommand } from './types.ts';

export const extractCommand = defineCommand({
  name: 'extract',
  summary: 'write the files a bundle carries (files: in airlock.yaml) into a folder, modes kept',
  usage: `Usage: airlock extract BUNDLE --files DIR [--force] [--json]     (-o DIR is the same)
       airlock extract BUNDLE.tar.* --files DIR    (a split bundle: its volumes, in place)

Writes every file the bundle carries (files: in airlock.yaml: binaries, install scripts, licences)
into DIR (created when missing), byte for byte and with the mode the spec gave it. Each is checked
against its sha256 as it is read from the bundle and written through a temp file that is renamed
into place: a damaged file never appears (exit ${ExitCode.integrity}). Names are checked again: nothing is written
outside DIR. A file already in DIR with the same bytes is left as it is (its mode set).

Options:
  --files DIR   the folder to write the files into (also -o, --output DIR)
  --force       replace files in DIR that have other content; without it, such a file stops the
                extraction before anything is written (exit ${ExitCode.conflict})`,
  options: {
    files: { type: 'string' },
    output: { type: 'string', short: 'o' },
    force: { type: 'boolean', default: false },
  },
  async run({ values, positionals, out, signal }) {
    if (positionals.length === 0) throw new UsageError('extract needs a bundle: airlock extract BUNDLE --files DIR');
    if (values.files !== undefined && values.output !== undefined && values.files !== values.output) throw new UsageError('--files and -o/--output name the same folder: give one');
    const dir = (values.files ?? values.output) as string | undefined;
    if (dir === undefined || dir === '') throw new UsageError('extract needs --files DIR: the folder to write the files the bundle carries into', { hint: 'e.g. airlock extract shop.tar --files ./files' });
    const started = Date.now();
    const result = await extractFiles(positionals.length === 1 ? positionals[0]! : positionals, dir, {
      force: values.force === true,
      signal,
      onFile: (f) => out.info(`${f.action} ${f.path} (${formatBytes(f.size)}, mode ${f.mode})`),
    });
    const secs = (Date.now() - started) / 1000;
    const rows = [['FILE', 'MODE', 'SIZE', 'SHA256', '']];
    for (const f of result.files) rows.push([f.name, f.mode, formatBytes(f.size), f.digest.slice('sha256:'.length), f.action]);
    out.result(
      { bundle: result.bundle, dir: result.dir, files: result.files, bytes: result.bytes, seconds: secs },
      `${table(rows)}\nwrote ${result.files.filter((f) => f.action !== 'unchanged').length} of ${result.files.length} file${result.files.length === 1 ? '' : 's'} to ${result.dir} (${formatBytes(result.bytes)}) in ${secs.toFixed(1)}s`,
    );
  },
});
