/**
 * An overload that begins at once, as breaking news does: `--cycles` times, the overload bench's mix (bench/overload.ts)
 * at `--rate` req/s for `--seconds`, on one node left idle before each (until its load-shedding samples say calm
 * again). Prints the served essential requests' latency at the client in the first 250 ms of each onset against the
 * rest, the 503s, and what the node shed, by reason.
 *
 * The overload bench has one onset per run, in a 30 s overload: the first second is 3 % of its requests, and its
 * p99 there moved from 17 to 54 ms between runs of the same code (docs/RELIABILITY.md item 28). Twenty onsets in
 * two minutes show how the node takes one; compare builds at one `--rate`, interleaved, and check what a change
 * costs an app opening on a moderately busy node too (`bench burst --rate 120`: item 28 is a rule that improved
 * onsets and was taken out for that).
 */
import { describeShed, log, ms, num, percentiles, pinFromFlag, runLoads, shedCounts, startNode } from './lib.js';
import { mix, mixSpec } from './overload.js';

export interface OnsetOptions {
  dataDir: string;
  cycles: number;
  /** The mix's rate during each onset, req/s. */
  rate: number;
  /** How long each onset lasts, s. */
  seconds: number;
  /** "NODE_CPUS:LOAD_CPUS" for taskset, e.g. "0:1". */
  pin?: string;
  logLevel?: string;
  configFile?: string;
}

/** The onset: requests due this soon after the load began. */
const ONSET_MS = 250;
/** Quiet before each onset, after the node has answered what it had: its samples (100 ms) and their average settle. */
const QUIET_MS = 1500;

export async function onset(o: OnsetOptions): Promise<void> {
  const node = await startNode(o.dataDir, { logLevel: o.logLevel, configFile: o.configFile });
  try {
    if (o.pin) pinFromFlag(o.pin);
    const kinds = await mix(node);
    const spec = (k: (typeof kinds)[number], seconds: number, rate: number, startAt?: number) =>
      mixSpec(node.url, k, seconds, Math.max(2, Math.round(256 * k.share)), Math.max(1, Math.round(rate * k.share)), startAt);
    log('warming up: the mix at 100 req/s for 3 s');
    await runLoads(kinds.map((k) => spec(k, 3, 100)));
    const early = kinds.map(() => [] as number[]);
    const later = kinds.map(() => [] as number[]);
    const refused = kinds.map(() => 0);
    const shedBefore = await shedCounts(node);
    for (let c = 0; c < o.cycles; c++) {
      await node.idle();
      await new Promise((r) => setTimeout(r, QUIET_MS));
      // The generator's process starts in the meantime; all kinds begin together.
      const startAt = Date.now() + 3000;
      const results = await runLoads(kinds.map((k) => spec(k, o.seconds, o.rate, startAt)));
      const dues = results.flatMap((r) => r.trace?.map((t) => t[1]) ?? []);
      const t0 = Math.min(...dues);
      results.forEach((r, i) => {
        refused[i] += r.statusCodes['503'] ?? 0;
        // [x-bench-seq, due, sent, answered] of each 2xx answer (essential kinds only).
        for (const [, due, , done] of r.trace ?? []) (due - t0 < ONSET_MS ? early : later)[i].push(done - due);
      });
      log(`onset ${c + 1}/${o.cycles}: ${results.map((r, i) => `${kinds[i].name} ${r.ok}/${r.requests}`).join(', ')}`);
    }
    const shedAfter = await shedCounts(node);
    console.log(`\n${o.cycles} onsets of the mix at ${num(o.rate)} req/s for ${o.seconds} s, the node idle before each; served essential requests at the client:`);
    kinds.forEach((k, i) => {
      if (k.priority !== 'essential') {
        console.log(`  ${k.name.padEnd(16)} ${num(refused[i])} × 503`);
        return;
      }
      const [e, l] = [percentiles(early[i]), percentiles(later[i])];
      console.log(
        `  ${k.name.padEnd(16)} first ${ONSET_MS} ms: ${num(early[i].length)} served, p50 ${ms(e.p50)}, p99 ${ms(e.p99)}, max ${ms(e.max)}; ` +
          `after: ${num(later[i].length)}, p50 ${ms(l.p50)}, p99 ${ms(l.p99)}; ${num(refused[i])} × 503`,
      );
    });
    console.log(`shed (all onsets): ${describeShed(shedBefore, shedAfter)}`);
  } finally {
    await node.close();
  }
}
