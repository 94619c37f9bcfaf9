// Loaded into a benchmarked airlock CLI child with `node --import ./bench/rss-preload.mjs`: on exit
// it records the process's peak resident set size (worker threads included, they share the
// process) so the benchmark can report memory without sampling from outside, which misses peaks.
// Writes bytes as a decimal number to $AIRLOCK_BENCH_RSS_FILE, or a line to stderr without it.
// Plain JavaScript on purpose: a .ts preload makes Node load its type stripper before airlock's
// compile cache is on, which added ~0.1 s to every timed airlock run.
import { writeFileSync } from 'node:fs';

process.once('exit', () => {
  // resourceUsage().maxRSS is in KiB (getrusage ru_maxrss on Linux).
  const bytes = process.resourceUsage().maxRSS * 1024;
  const file = process.env.AIRLOCK_BENCH_RSS_FILE;
  if (file) writeFileSync(file, String(bytes));
  else process.stderr.write(`airlock-bench: peak RSS ${bytes} bytes\n`);
});
