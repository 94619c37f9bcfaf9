// The tool's version, from package.json (recorded in every bundle).
import pkg from '../package.json' with { type: 'json' };

export const TOOL_NAME = 'airlock';
export const TOOL_VERSION: string = pkg.version;
