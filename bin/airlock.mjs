#!/usr/bin/env node
// Entry point for `npx airlock` / the package bin. The CLI is TypeScript run natively by Node 24
// (type stripping); refuse older runtimes with an actionable message instead of a syntax error.
const major = Number(process.versions.node.split('.')[0]);
if (major < 24) {
  process.stderr.write(`airlock: needs Node.js 24 or newer (this is ${process.version}); run it through \`npx airlock\` after \`npm ci\`, which brings Node 24\n`);
  process.exit(2);
}
const { main } = await import('../src/cli/main.ts');
process.exitCode = await main(process.argv.slice(2));
