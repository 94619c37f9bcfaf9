// Loaded into a benchmarked airlock CLI child with `node --import ./bench/rss-preload.ts`: on exit
// it records the process's peak resident set size (worker threads included, they share the
// process) so the benchmark can report memory without sampling from outside, which misses peaks.
// Writes bytes as a decimal number to $AIRLOCK_BENCH_RSS_FILE, or a line to stderr without it.
import { writeFileSync } from 'node:fs';

process.once('exit', () => {
  // resourceUsage().maxRSS is in KiB (getrusage ru_maxrss on Linux).
  const bytes = process.resourceUsage().maxRSS * 1024;
  const file = process.env.AIRLOCK_BENCH_RSS_FILE;
  if (file) writeFileSync(file, String(bytes));
  else process.stderr.write(`airlock-bench: peak RSS ${bytes} bytes\n`);
});
