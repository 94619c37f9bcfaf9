// One way a parsed YAML document becomes a value: aliases that expand past a bound (a "billion
// laughs" document, which would take the machine's memory) are refused as the user's input,
// naming it, never reported as a crash of airlock.
import type { Document } from 'yaml';
import { UsageError, type CodeOf } from '../core/errors.ts';

/** The document's value, with at most `maxAliasCount` alias expansions (yaml's own default is 100). */
export function yamlValue(doc: Document, what: string, code: CodeOf<'usage'>, maxAliasCount = 100): unknown {
  try {
    return doc.toJS({ maxAliasCount });
  } catch (e) {
    if (/alias/i.test((e as Error).message)) {
      throw new UsageError(`${what}: its YAML aliases expand too far (more than ${maxAliasCount} alias expansions): refused, as a document built to exhaust memory would be`, {
        code,
        cause: e,
        hint: 'write the repeated values out, or use fewer anchors and aliases',
      });
    }
    throw new UsageError(`${what} is not valid YAML: ${(e as Error).message.split('\n')[0]}`, { code, cause: e });
  }
}
