// Loaded into a benchmarked airlock CLI child (NODE_OPTIONS=--import=…): on exit it records the
// process's peak resident set size (worker threads included, they share the process) so the
// benchmark can report memory without sampling from outside, which misses peaks.
// It reads VmHWM from /proc/self/status, the peak of this very program's memory: getrusage's
// ru_maxrss survives exec on Linux, so a child forked from a large benchmark process would report
// the parent's size instead (a 194 MB benchmark made every airlock child "peak" at 194 MB).
// Writes bytes as a decimal number to $AIRLOCK_BENCH_RSS_FILE, or a line to stderr without it.
// Plain JavaScript on purpose: a .ts preload makes Node load its type stripper before airlock's
// compile cache is on, which added ~0.1 s to every timed airlock run.
import { readFileSync, writeFileSync } from 'node:fs';

process.once('exit', () => {
  const hwm = /^VmHWM:\s+(\d+) kB$/m.exec(readFileSync('/proc/self/status', 'utf8'));
  const bytes = hwm ? Number(hwm[1]) * 1024 : process.resourceUsage().maxRSS * 1024;
  const file = process.env.AIRLOCK_BENCH_RSS_FILE;
  if (file) writeFileSync(file, String(bytes));
  else process.stderr.write(`airlock-bench: peak RSS ${bytes} bytes\n`);
});
