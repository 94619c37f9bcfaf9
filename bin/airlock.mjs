#!/usr/bin/env -S node --max-semi-space-size=2
// Entry point for `npx airlock` / the package bin. The shebang caps V8's young generation (2 MiB
// semi-spaces; by default they grow to tens of MiB under a steady allocation rate): airlock streams,
// what it allocates dies young, and the larger young generation only raised the peak RSS (a pack of
// 1000 images here: 229 MB by default, 140-147 MB with the cap, no slower; 348 MiB of layers: the
// same pack and push times). In a development clone the CLI is the
// TypeScript under src/, run natively by Node 24 (type stripping); an installed package runs the
// JavaScript built into dist/ (`npm run build`, done by `npm pack`), because Node does not strip
// types of files inside node_modules. Older runtimes get an actionable message, not a syntax error.
import { existsSync } from 'node:fs';

const sources = new URL('../src/cli/main.ts', import.meta.url);
const fromSources = !sources.pathname.includes('/node_modules/') && existsSync(sources);
const major = Number(process.versions.node.split('.')[0]);
if (major < 24) {
  // A clone brings Node 24 as a devDependency; an installed package needs it on the machine.
  const how = fromSources ? 'run it through `npx airlock` after `npm ci`, which brings Node 24' : 'install it from https://nodejs.org or your package manager';
  process.stderr.write(`airlock: needs Node.js 24 or newer (this is ${process.version}); ${how}\n`);
  process.exit(2);
}
// Cache compiled code between runs (~0.15 s less start-up per command); must precede the import.
const { enableCompileCache } = await import('node:module');
enableCompileCache?.();
const { main } = await import(fromSources ? sources.href : new URL('../dist/cli/main.js', import.meta.url).href);
process.exitCode = await main(process.argv.slice(2));
