/**
 * How often this CPU stops running us at all: a loop that does nothing but read the clock for `{ ms }` (JSON on
 * stdin, as bench/lib.ts runChild sends it), and every gap between two readings longer than 1 ms. On a quiet
 * machine each gap is time the CPU was taken away (the hypervisor descheduled the virtual CPU, or the kernel ran
 * something else): a request arriving then waits for it whatever the server does, so these gaps are a floor
 * under its tail latency. Prints one JSON line: CpuPauses.
 */
export interface CpuPauses {
  ms: number;
  gaps: number;
  over5: number;
  over10: number;
  pausedMs: number;
  longest: number[];
}

let stdin = '';
for await (const chunk of process.stdin) stdin += chunk;
const duration = (JSON.parse(stdin) as { ms: number }).ms;
const gaps: number[] = [];
const end = performance.now() + duration;
let last = performance.now();
while (last < end) {
  const t = performance.now();
  if (t - last > 1) gaps.push(t - last);
  last = t;
}
gaps.sort((a, b) => b - a);
const result: CpuPauses = {
  ms: duration,
  gaps: gaps.length,
  over5: gaps.filter((g) => g > 5).length,
  over10: gaps.filter((g) => g > 10).length,
  pausedMs: gaps.reduce((a, b) => a + b, 0),
  longest: gaps.slice(0, 3),
};
process.stdout.write(`${JSON.stringify(result)}\n`);
