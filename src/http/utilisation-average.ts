/**
 * The event loop's utilisation averaged over the last few hundred milliseconds, each sample weighted by the time
 * it covers. The sampler's timer is late whenever the loop is held, so its samples cover uneven spans: a loop
 * busy 60 ms of every 70 and sampled every 20 ms gives one long busy sample and one short idle one per cycle.
 * Weighted alike, those average about 0.5; weighted by their spans, about 0.86, which is what the loop did.
 */
export class UtilisationAverage {
  #value = 0;

  /** @param timeConstantMs how fast old samples fade: a sample covering this long moves the average 63 % of the way. */
  constructor(private readonly timeConstantMs: number) {}

  get value(): number {
    return this.#value;
  }

  /** Adds the utilisation measured over the last `elapsedMs`. */
  add(utilisation: number, elapsedMs: number): void {
    const weight = 1 - Math.exp(-Math.max(0, elapsedMs) / this.timeConstantMs);
    this.#value += weight * (utilisation - this.#value);
  }
}
