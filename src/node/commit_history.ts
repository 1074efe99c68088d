/**
 * A rolling history of the node's commits and commit latency for the status page (issue 17):
 * one sample a second for ten minutes by default, bounded in memory (`samplesMax` samples, each
 * the histogram's cumulative counts and the figures of its interval).
 *
 * A sample reads the commit-latency histogram the request path already feeds
 * (src/node/request_metrics.ts, `haret_commit_latency_seconds`, summed over paths and
 * namespaces): the figures of an interval are differences of two readings, so the history
 * costs the data path nothing. Quantiles are estimated from the bucket counts as Prometheus'
 * `histogram_quantile` does (linear within a bucket), so they are as fine as the buckets; the
 * mean is exact.
 */

import type { Registry } from 'prom-client';

/** The commit-latency histogram at one moment, summed over every label set. */
export type CommitTotals = {
  /** Commits so far (the histogram's count). */
  readonly count: number;
  readonly sumSeconds: number;
  /** Bucket upper bounds in seconds, ascending; the last is Infinity. */
  readonly bounds: readonly number[];
  /** Commits at or below each bound (cumulative), one per bound. */
  readonly cumulative: readonly number[];
};

/** What happened between two readings. Latencies are null when nothing committed. */
export type CommitFigures = {
  readonly seconds: number;
  readonly commits: number;
  readonly perSecond: number;
  readonly p50Ms: number | null;
  readonly p99Ms: number | null;
  readonly meanMs: number | null;
};

/** The history as GET /history.json serves it: the samples column by column, oldest first. */
export type HistoryDocument = {
  readonly intervalMs: number;
  /** The span the page charts: intervalMs times samplesMax. */
  readonly windowMs: number;
  readonly samples: {
    /** Epoch ms at the end of each interval. */
    readonly atMs: readonly number[];
    readonly commits: readonly number[];
    readonly perSecond: readonly number[];
    readonly p50Ms: readonly (number | null)[];
    readonly p99Ms: readonly (number | null)[];
    readonly meanMs: readonly (number | null)[];
  };
  /** The last minute (or all of the history when it is younger), null before two samples. */
  readonly lastMinute: CommitFigures | null;
  /** Whole minutes back from the latest sample, newest first, each from the histogram at its ends. */
  readonly minutes: readonly (CommitFigures & { readonly fromMs: number; readonly toMs: number })[];
};

export const commitLatencyMetric = 'haret_commit_latency_seconds';

/** The commit-latency histogram of `registry`, summed; null when it has no such histogram. */
export async function readCommitTotals(registry: Registry, name: string = commitLatencyMetric): Promise<CommitTotals | null> {
  const metric = registry.getSingleMetric(name);
  if (metric === undefined) return null;
  const { values } = await metric.get();
  let count = 0;
  let sumSeconds = 0;
  const byBound = new Map<number, number>();
  for (const sample of values) {
    const metricName = (sample as { readonly metricName?: string }).metricName;
    if (metricName === `${name}_count`) count += sample.value;
    else if (metricName === `${name}_sum`) sumSeconds += sample.value;
    else if (metricName === `${name}_bucket`) {
      const le = sample.labels['le'];
      const bound = le === '+Inf' ? Infinity : Number(le);
      if (!Number.isNaN(bound)) byBound.set(bound, (byBound.get(bound) ?? 0) + sample.value);
    }
  }
  const bounds = [...byBound.keys()].sort((a, b) => a - b);
  if (bounds.length === 0 || bounds[bounds.length - 1] !== Infinity) bounds.push(Infinity);
  return { count, sumSeconds, bounds, cumulative: bounds.map((bound) => (bound === Infinity ? count : (byBound.get(bound) ?? 0))) };
}

/** The `q` quantile (0..1) in ms of `total` observations with these cumulative bucket counts; null when total is 0. */
export function quantileMs(q: number, bounds: readonly number[], cumulative: readonly number[], total: number): number | null {
  if (total <= 0) return null;
  const rank = q * total;
  for (let index = 0; index < bounds.length; index += 1) {
    const atOrBelow = cumulative[index] ?? 0;
    if (atOrBelow < rank) continue;
    const upper = bounds[index] ?? Infinity;
    const lower = index === 0 ? 0 : (bounds[index - 1] ?? 0);
    // Beyond the highest finite bound nothing finer is known: say that bound, as Prometheus does.
    if (upper === Infinity) return lower * 1000;
    const below = index === 0 ? 0 : (cumulative[index - 1] ?? 0);
    const inBucket = atOrBelow - below;
    const fraction = inBucket === 0 ? 1 : (rank - below) / inBucket;
    return (lower + (upper - lower) * fraction) * 1000;
  }
  return null;
}

/** The figures between two readings `seconds` apart. A count that went down (a new registry) counts from zero. */
export function figuresBetween(before: CommitTotals | null, after: CommitTotals, seconds: number): CommitFigures {
  const comparable = before !== null && before.count <= after.count && sameBounds(before.bounds, after.bounds);
  const commits = after.count - (comparable ? before.count : 0);
  const sumSeconds = after.sumSeconds - (comparable ? before.sumSeconds : 0);
  const cumulative = after.cumulative.map((value, index) => value - (comparable ? (before.cumulative[index] ?? 0) : 0));
  return {
    seconds: round(seconds, 3),
    commits,
    perSecond: seconds > 0 ? round(commits / seconds, 2) : 0,
    p50Ms: roundOrNull(quantileMs(0.5, after.bounds, cumulative, commits)),
    p99Ms: roundOrNull(quantileMs(0.99, after.bounds, cumulative, commits)),
    meanMs: commits > 0 ? round((Math.max(0, sumSeconds) / commits) * 1000, 3) : null,
  };
}

type Point = {
  /** Epoch ms, for display. */
  readonly atMs: number;
  /** performance.now() ms, for the intervals (the wall clock may jump). */
  readonly monoMs: number;
  readonly totals: CommitTotals;
  /** The interval since the point before; null for the first. */
  readonly figures: CommitFigures | null;
};

export type CommitHistoryOptions = {
  /** Default 1 s. */
  readonly intervalMs?: number;
  /** Samples kept; default 600 (ten minutes at one a second). */
  readonly samplesMax?: number;
};

export class CommitHistory {
  readonly intervalMs: number;
  readonly samplesMax: number;
  readonly #read: () => Promise<CommitTotals | null>;
  readonly #points: Point[] = [];
  #timer: NodeJS.Timeout | null = null;
  #sampling = false;
  readonly counters = { samples: 0, failures: 0 };

  constructor(read: () => Promise<CommitTotals | null>, options: CommitHistoryOptions = {}) {
    this.#read = read;
    this.intervalMs = positiveInteger(options.intervalMs ?? 1_000, 'intervalMs');
    // Two at least: a figure is the difference of two readings.
    this.samplesMax = Math.max(2, positiveInteger(options.samplesMax ?? 600, 'samplesMax'));
  }

  /** Samples now and every interval until `stop`. */
  start(): void {
    if (this.#timer !== null) return;
    this.#timer = setInterval(() => void this.sample(), this.intervalMs);
    // The history must never keep a process alive by itself.
    this.#timer.unref();
    void this.sample();
  }

  stop(): void {
    if (this.#timer !== null) clearInterval(this.#timer);
    this.#timer = null;
  }

  /** Takes one reading (skipped while the previous one is still being read). */
  async sample(atMs: number = Date.now(), monoMs: number = performance.now()): Promise<void> {
    if (this.#sampling) return;
    this.#sampling = true;
    try {
      const totals = await this.#read();
      if (totals === null) return;
      const previous = this.#points[this.#points.length - 1];
      const figures = previous === undefined ? null : figuresBetween(previous.totals, totals, Math.max(0, monoMs - previous.monoMs) / 1000);
      this.#points.push({ atMs, monoMs, totals, figures });
      if (this.#points.length > this.samplesMax) this.#points.splice(0, this.#points.length - this.samplesMax);
      this.counters.samples += 1;
    } catch {
      this.counters.failures += 1;
    } finally {
      this.#sampling = false;
    }
  }

  /** Samples held (at most samplesMax). */
  get length(): number {
    return this.#points.length;
  }

  document(): HistoryDocument {
    const samples = { atMs: [] as number[], commits: [] as number[], perSecond: [] as number[], p50Ms: [] as (number | null)[], p99Ms: [] as (number | null)[], meanMs: [] as (number | null)[] };
    for (const point of this.#points) {
      if (point.figures === null) continue;
      samples.atMs.push(point.atMs);
      samples.commits.push(point.figures.commits);
      samples.perSecond.push(point.figures.perSecond);
      samples.p50Ms.push(point.figures.p50Ms);
      samples.p99Ms.push(point.figures.p99Ms);
      samples.meanMs.push(point.figures.meanMs);
    }
    const minutes = this.#minutes();
    return { intervalMs: this.intervalMs, windowMs: this.intervalMs * this.samplesMax, samples, lastMinute: minutes[0] ?? null, minutes };
  }

  /** Whole minutes back from the latest point, newest first; the oldest may be shorter. */
  #minutes(): (CommitFigures & { fromMs: number; toMs: number })[] {
    const points = this.#points;
    const minutes: (CommitFigures & { fromMs: number; toMs: number })[] = [];
    let toIndex = points.length - 1;
    const latest = points[toIndex];
    if (latest === undefined) return minutes;
    for (let k = 1; toIndex > 0; k += 1) {
      const cutoff = latest.monoMs - k * 60_000;
      let fromIndex = toIndex;
      // The earliest point within this minute (a point before the previous one's end is allowed to start it).
      while (fromIndex > 0 && (points[fromIndex - 1] as Point).monoMs >= cutoff - this.intervalMs / 2) fromIndex -= 1;
      if (fromIndex === toIndex) fromIndex = toIndex - 1;
      const from = points[fromIndex] as Point;
      const to = points[toIndex] as Point;
      minutes.push({ fromMs: from.atMs, toMs: to.atMs, ...figuresBetween(from.totals, to.totals, Math.max(0, to.monoMs - from.monoMs) / 1000) });
      toIndex = fromIndex;
    }
    return minutes;
  }
}

function sameBounds(a: readonly number[], b: readonly number[]): boolean {
  return a.length === b.length && a.every((bound, index) => bound === b[index]);
}

function round(value: number, digits: number): number {
  const scale = 10 ** digits;
  return Math.round(value * scale) / scale;
}

function roundOrNull(value: number | null): number | null {
  return value === null ? null : round(value, 3);
}

function positiveInteger(value: number, name: string): number {
  if (!Number.isSafeInteger(value) || value < 1) throw new RangeError(`commit history ${name} must be a positive integer`);
  return value;
}
