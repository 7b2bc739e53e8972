/**
 * `starling seed`: a realistic demo and benchmark dataset, made fast.
 *
 * The shape follows what social networks look like: a power-law follow graph
 * (most accounts follow ~50 others, a few are followed by half the network),
 * skewed posting activity, ~20 % replies and some reblogs, hashtags drawn
 * from a Zipf distribution over ~5,000 tags, favourites concentrated on
 * popular authors, and ids spread over the past ~60 days so timelines and
 * pagination see time-ordered ids as in real life.
 *
 * Why rows are written straight through the better-sqlite3 handle (prepared
 * multi-row INSERTs in large transactions, with the journal off and secondary
 * indexes built after loading) instead of through services/: the services
 * path is built for live traffic — one transaction per post, fsync at every
 * commit, fan-out through the job queue — and would take hours for a million
 * posts. The seeder instead plans the whole dataset in memory and writes each
 * table once, so every derived value (counters, home feeds, distributions) is
 * computed from the same plan and is consistent with the rows by construction.
 * The schema still comes from the real migrations (migrateToLatest), and the
 * HTML of every status comes from the real renderer (domain/text.ts).
 *
 * What a seeded dataset holds beyond the public data:
 *   - every user's password is SEED_PASSWORD (one argon2 hash, computed once
 *     with services/passwords.ts and reused: hashing 100,000 passwords would
 *     take longer than the rest of the seeding);
 *   - one OAuth application ("Starling bench") and, per account, an access
 *     token `bench-token-<accountId>` (stored as its SHA-256, like any token),
 *     with scopes "read write follow push", so benchmarks need no login.
 *
 * Home feeds are seeded for the most recent --feed-depth entries per account
 * (default 400; Mastodon keeps 800): enough for 20 pages of 20, and it keeps
 * the file size and seeding time reasonable. Older entries would only matter to
 * someone paging back more than 400 posts; `starling feeds rebuild` can
 * recreate feeds from statuses and follows with the live rules.
 */
import { parseArgs } from 'node:util';
import { existsSync, rmSync, statSync } from 'node:fs';
import { createHash } from 'node:crypto';
import SQLite from 'better-sqlite3';
import { loadConfig, type Config } from '../config.js';
import { openSqlite, migrateToLatest } from '../store/db.js';
import { createIdGenerator } from '../domain/ids.js';
import { renderHtml } from '../domain/text.js';
import { accountUrl, type Urls } from '../domain/entities.js';
import { hashPassword } from '../services/passwords.js';
import { sha256 } from '../services/auth.js';

/** The password of every seeded user. */
export const SEED_PASSWORD = 'starling-seed-password';
/** The access token seeded for an account (only its SHA-256 is stored). */
export const benchToken = (accountId: string): string => `bench-token-${accountId}`;
export const SEED_APP_NAME = 'Starling bench';
export const SEED_SCOPES = 'read write follow push';

const DAY = 86_400_000;
/** Number of distinct hashtags to draw from. */
const TAG_POOL = 5000;
/** Favourites drawn per status (before duplicates are dropped). */
const FAVOURITES_PER_POST = 1.5;
/** Id generator node ids for seeded rows: far from the default live node id 0, one per kind. */
const NODE = { accounts: 1001, follows: 1002, statuses: 1003, tags: 1004, favourites: 1005, auth: 1006 } as const;

// ---------------------------------------------------------------------------
// Progress on stderr: one line redrawn with \r on a terminal, plain lines otherwise.

export class Progress {
  private phase = '';
  private total = 0;
  private done = 0;
  private started = 0;
  private lastDraw = 0;
  private readonly tty: boolean;

  constructor(
    private readonly out: NodeJS.WriteStream = process.stderr,
    private readonly quiet = false,
  ) {
    this.tty = Boolean(out.isTTY);
  }

  begin(phase: string, total: number): void {
    this.phase = phase;
    this.total = total;
    this.done = 0;
    this.started = performance.now();
    this.lastDraw = 0;
    this.draw(true);
  }

  /** Sets the count done so far; cheap enough to call every few thousand items. */
  update(done: number): void {
    this.done = done;
    const now = performance.now();
    if (now - this.lastDraw >= (this.tty ? 150 : 5000)) this.draw(false);
  }

  end(note = ''): void {
    this.done = this.total;
    const secs = (performance.now() - this.started) / 1000;
    if (this.quiet) return;
    const line = `${this.phase}: ${fmt(this.total)} in ${secs.toFixed(1)} s${note ? ` (${note})` : ''}`;
    this.out.write(this.tty ? `\r\x1b[2K${line}\n` : `${line}\n`);
  }

  private draw(first: boolean): void {
    if (this.quiet) return;
    this.lastDraw = performance.now();
    const secs = (this.lastDraw - this.started) / 1000;
    const rate = secs > 0 ? this.done / secs : 0;
    const eta = rate > 0 && this.total > this.done ? (this.total - this.done) / rate : 0;
    const pct = this.total > 0 ? Math.min(1, this.done / this.total) : 1;
    const text = `${this.phase}  ${fmt(this.done)}/${fmt(this.total)}  ${fmt(Math.round(rate))}/s  ETA ${clock(eta)}`;
    if (this.tty) {
      const width = 24;
      const filled = Math.round(pct * width);
      this.out.write(`\r\x1b[2K[${'#'.repeat(filled)}${'.'.repeat(width - filled)}] ${(pct * 100).toFixed(0).padStart(3)}%  ${text}`);
    } else if (!first) {
      this.out.write(`${text}\n`);
    }
  }
}

const fmt = (n: number) => n.toLocaleString('en-US');
function clock(secs: number): string {
  const s = Math.round(secs);
  return `${Math.floor(s / 60)}:${String(s % 60).padStart(2, '0')}`;
}

// ---------------------------------------------------------------------------
// Deterministic randomness.

type Rng = () => number;

/** sfc32 seeded through splitmix32: fast, good enough for synthetic data, reproducible. */
function makeRng(seed: number): Rng {
  let s = seed >>> 0;
  const split = () => {
    s = (s + 0x9e3779b9) | 0;
    let z = s;
    z = Math.imul(z ^ (z >>> 16), 0x85ebca6b);
    z = Math.imul(z ^ (z >>> 13), 0xc2b2ae35);
    return (z ^ (z >>> 16)) >>> 0;
  };
  let a = split();
  let b = split();
  let c = split();
  let d = split();
  return () => {
    a |= 0;
    b |= 0;
    c |= 0;
    d |= 0;
    const t = (((a + b) | 0) + d) | 0;
    d = (d + 1) | 0;
    a = b ^ (b >>> 9);
    b = (c + (c << 3)) | 0;
    c = (c << 21) | (c >>> 11);
    c = (c + t) | 0;
    return (t >>> 0) / 4294967296;
  };
}

const randInt = (rng: Rng, n: number) => Math.floor(rng() * n);

function normal(rng: Rng): number {
  const u = 1 - rng();
  const v = rng();
  return Math.sqrt(-2 * Math.log(u)) * Math.cos(2 * Math.PI * v);
}

/** Walker/Vose alias table: O(1) draws from a fixed discrete distribution. */
class Alias {
  private readonly prob: Float64Array;
  private readonly alias: Int32Array;
  readonly n: number;

  constructor(weights: ArrayLike<number>) {
    const n = weights.length;
    this.n = n;
    this.prob = new Float64Array(n);
    this.alias = new Int32Array(n);
    let sum = 0;
    for (let i = 0; i < n; i++) sum += weights[i];
    if (n === 0 || !(sum > 0)) throw new Error('alias table needs a positive total weight');
    const scaled = new Float64Array(n);
    const small = new Int32Array(n);
    const large = new Int32Array(n);
    let ns = 0;
    let nl = 0;
    for (let i = 0; i < n; i++) {
      scaled[i] = (weights[i] * n) / sum;
      if (scaled[i] < 1) small[ns++] = i;
      else large[nl++] = i;
    }
    while (ns > 0 && nl > 0) {
      const l = small[--ns];
      const g = large[--nl];
      this.prob[l] = scaled[l];
      this.alias[l] = g;
      scaled[g] = scaled[g] + scaled[l] - 1;
      if (scaled[g] < 1) small[ns++] = g;
      else large[nl++] = g;
    }
    while (nl > 0) this.prob[large[--nl]] = 1;
    while (ns > 0) this.prob[small[--ns]] = 1;
  }

  sample(rng: Rng): number {
    const i = Math.floor(rng() * this.n);
    return rng() < this.prob[i] ? i : this.alias[i];
  }
}

function zipfWeights(n: number, s: number): Float64Array {
  const w = new Float64Array(n);
  for (let i = 0; i < n; i++) w[i] = 1 / Math.pow(i + 1, s);
  return w;
}

function shuffled(n: number, rng: Rng): Int32Array {
  const a = new Int32Array(n);
  for (let i = 0; i < n; i++) a[i] = i;
  for (let i = n - 1; i > 0; i--) {
    const j = randInt(rng, i + 1);
    const t = a[i];
    a[i] = a[j];
    a[j] = t;
  }
  return a;
}

/** n sorted times in [from, to), denser in the (UTC) evening than at night, as people post. */
function sortedTimes(n: number, from: number, to: number, rng: Rng): Float64Array {
  const t = new Float64Array(n);
  for (let i = 0; i < n; i++) {
    for (;;) {
      const x = from + rng() * (to - from);
      const hour = ((x % DAY) / DAY) * 24;
      if (rng() < 0.55 + 0.45 * Math.sin(((hour - 9) / 24) * 2 * Math.PI)) {
        t[i] = Math.floor(x);
        break;
      }
    }
  }
  return t.sort();
}

// ---------------------------------------------------------------------------
// Words for names, posts and hashtags.

const WORDS = (
  'time people year way day man thing woman life child world school state family student group country problem hand ' +
  'part place case week company system program question work government number night point home water room mother area ' +
  'money story fact month lot right study book eye job word business issue side kind head house service friend father ' +
  'power hour game line end member law car city community name president team minute idea kid body information back ' +
  'parent face others level office door health person art war history party result change morning reason research girl ' +
  'guy moment air teacher force education foot boy age policy music market sense nation plan college interest death ' +
  'experience effect class control care field development role effort rate heart drug show leader light voice wife ' +
  'police mind price report decision son view relationship town road arm difference value building action model season ' +
  'society tax director position player record paper space ground form event official matter center couple site project ' +
  'activity star table need court oil situation cost industry figure street image phone data picture practice piece land ' +
  'product doctor wall patient worker news test movie north love support technology step baby computer type attention film ' +
  'tree source organization hair window evidence population site garden coffee bread river mountain ocean forest cloud ' +
  'rain snow summer winter spring autumn cat dog bird fish horse train bike bus ship plane bridge castle village island ' +
  'beach desert valley lake sky moon sun planet rocket robot code server network cable screen keyboard pixel photo camera ' +
  'guitar piano song dance theatre poem novel chapter letter stamp coin market bakery kitchen recipe soup salad tea pasta ' +
  'cheese apple lemon orange berry pepper garlic onion potato tomato'
).split(/\s+/);
const ADJECTIVES = (
  'good new first last long great little own other old right big high different small large next early young important few ' +
  'public bad same able quiet bright calm dark eager fancy gentle happy jolly kind lively nice proud silly witty brave ' +
  'clever fierce grumpy mighty odd plain rapid shy swift tiny vast warm wild wise zesty green blue red golden silver amber ' +
  'crimson violet rusty sunny misty stormy frosty dusty sleepy noisy lucky curious'
).split(/\s+/);

/** ~5,000 distinct hashtag names: single words first (they are the most common), then pairs. */
function tagNames(n: number, rng: Rng): string[] {
  const names = new Set<string>(WORDS);
  const pool = [...ADJECTIVES, ...WORDS];
  while (names.size < n) names.add(`${pool[randInt(rng, pool.length)]}${WORDS[randInt(rng, WORDS.length)]}`);
  return [...names].slice(0, n);
}

// ---------------------------------------------------------------------------
// The plan and the writer.

export interface SeedOptions {
  config: Config;
  accounts: number;
  posts: number;
  seed: string;
  /** Most recent home-feed entries seeded per account. */
  feedDepth: number;
  /** Replace an existing non-empty database. */
  force: boolean;
  progress?: Progress;
}

export interface SeedSummary {
  databaseFile: string;
  accounts: number;
  follows: number;
  statuses: number;
  originals: number;
  replies: number;
  reblogs: number;
  favourites: number;
  tags: number;
  statusTags: number;
  mentions: number;
  homeFeedRows: number;
  pullAccounts: number;
  fanoutThreshold: number;
  feedDepth: number;
  followers: { max: number; median: number; over50k: number; over10k: number };
  following: { max: number; median: number };
  statusesPerAccount: { max: number; median: number };
  visibility: { public: number; unlisted: number; private: number };
  password: string;
  tokenPattern: string;
  bytes: number;
  seconds: number;
}

const VIS = ['public', 'unlisted', 'private'] as const;
const KIND_ORIGINAL = 0;
const KIND_REPLY = 1;
const KIND_REBLOG = 2;

function median(a: Int32Array): number {
  if (a.length === 0) return 0;
  const s = Int32Array.from(a).sort();
  return s[s.length >> 1];
}

function seedNumber(seed: string): number {
  return createHash('sha256').update(seed).digest().readUInt32LE(0);
}

/** A prepared multi-row INSERT: rows are buffered and sent `perStatement` at a time. */
function inserter(db: SQLite.Database, table: string, columns: readonly string[], perStatement = 100) {
  const one = `(${columns.map(() => '?').join(',')})`;
  const head = `INSERT INTO ${table} (${columns.join(',')}) VALUES `;
  const full = db.prepare(head + Array(perStatement).fill(one).join(','));
  const single = db.prepare(head + one);
  const width = columns.length;
  const buf: unknown[] = new Array(perStatement * width);
  let at = 0;
  let count = 0;
  return {
    add(...values: unknown[]): void {
      for (let i = 0; i < width; i++) buf[at++] = values[i];
      count++;
      if (at === buf.length) {
        full.run(buf);
        at = 0;
      }
    },
    flush(): void {
      for (let i = 0; i < at; i += width) single.run(buf.slice(i, i + width));
      at = 0;
    },
    get count() {
      return count;
    },
  };
}

export async function seed(opts: SeedOptions): Promise<SeedSummary> {
  const started = performance.now();
  const progress = opts.progress ?? new Progress(process.stderr, true);
  const { config } = opts;
  const N = opts.accounts;
  const M = opts.posts;
  const K = opts.feedDepth;
  const threshold = config.fanoutThreshold;
  if (!Number.isInteger(N) || N < 2) throw new Error('--accounts must be an integer of at least 2');
  if (!Number.isInteger(M) || M < 0) throw new Error('--posts must be a non-negative integer');
  if (!Number.isInteger(K) || K < 1) throw new Error('--feed-depth must be a positive integer');
  if (N > 5_000_000 || M > 50_000_000) throw new Error('that is more than this seeder is meant for (5M accounts, 50M posts)');

  const file = config.databaseFile;
  prepareFile(file, opts.force);

  const baseSeed = seedNumber(opts.seed);
  const rng = makeRng(baseSeed);
  const textRng = makeRng(baseSeed ^ 0x5eed7e47);
  // Times depend on the clock (the data ends now); their own stream keeps the rest reproducible.
  const timeRng = makeRng(baseSeed ^ 0x71e5);
  const now = Date.now();
  const urls: Urls = { base: config.publicUrl, domain: config.domain };

  progress.begin('password hash (argon2, once)', 1);
  const passwordHash = await hashPassword(SEED_PASSWORD);
  progress.end();

  // --- Accounts: created 90 to 61 days ago; popularity is a random rank, not the creation order.
  progress.begin('plan: accounts and follow graph', N);
  const accountTime = sortedTimes(N, now - 90 * DAY, now - 61 * DAY, timeRng);
  const accountIds = new BigInt64Array(N);
  {
    let clockMs = 0;
    const gen = createIdGenerator(NODE.accounts, () => clockMs);
    for (let i = 0; i < N; i++) {
      clockMs = accountTime[i];
      accountIds[i] = BigInt(gen.next());
    }
  }
  const rank = shuffled(N, rng); // rank[i]: popularity rank of account i (0 = most followed)
  const popWeight = new Float64Array(N);
  for (let i = 0; i < N; i++) popWeight[i] = 1 / (rank[i] + 1);
  const popular = new Alias(popWeight);

  // --- Follow graph: out-degree log-normal around a median of 50 (capped at 5,000), targets 70 % by a
  // Zipf(1) popularity, 30 % uniform. At 100k accounts this gives a handful of accounts above
  // 50,000 followers and a few dozen above 10,000, with a median follower count in the tens.
  // Small networks (under 1,000 accounts) get a proportionally smaller median, so that
  // a test-sized dataset is not a near-complete graph.
  const outDeg = new Int32Array(N);
  let plannedEdges = 0;
  const maxOut = Math.min(N - 1, 5000);
  const medianOut = Math.min(50, Math.max(3, Math.round(N / 20)));
  for (let i = 0; i < N; i++) {
    const d = Math.round(Math.exp(Math.log(medianOut) + 1.0 * normal(rng)));
    outDeg[i] = Math.max(0, Math.min(maxOut, d));
    plannedEdges += outDeg[i];
  }
  const outStart = new Int32Array(N + 1);
  let outTargets = new Int32Array(plannedEdges);
  {
    const chosen = new Set<number>();
    let e = 0;
    for (let i = 0; i < N; i++) {
      outStart[i] = e;
      const d = outDeg[i];
      chosen.clear();
      for (let tries = 0; chosen.size < d && tries < d * 4 + 10; tries++) {
        const t = rng() < 0.7 ? popular.sample(rng) : randInt(rng, N);
        if (t !== i) chosen.add(t);
      }
      for (const t of chosen) outTargets[e++] = t;
      outTargets.subarray(outStart[i], e).sort();
      outDeg[i] = e - outStart[i];
      if ((i & 1023) === 0) progress.update(i);
    }
    outStart[N] = e;
    outTargets = outTargets.slice(0, e);
  }
  const E = outStart[N];
  const inDeg = new Int32Array(N);
  for (let e = 0; e < E; e++) inDeg[outTargets[e]]++;
  const inStart = new Int32Array(N + 1);
  for (let i = 0; i < N; i++) inStart[i + 1] = inStart[i] + inDeg[i];
  const inSources = new Int32Array(E);
  {
    const fill = inStart.slice(0, N);
    for (let i = 0; i < N; i++) for (let e = outStart[i]; e < outStart[i + 1]; e++) inSources[fill[outTargets[e]]++] = i;
  }
  const follows = (a: number, b: number): boolean => {
    let lo = outStart[a];
    let hi = outStart[a + 1] - 1;
    while (lo <= hi) {
      const mid = (lo + hi) >> 1;
      const v = outTargets[mid];
      if (v === b) return true;
      if (v < b) lo = mid + 1;
      else hi = mid - 1;
    }
    return false;
  };
  const pull = new Uint8Array(N);
  let pullAccounts = 0;
  for (let i = 0; i < N; i++) {
    if (inDeg[i] >= threshold) {
      pull[i] = 1;
      pullAccounts++;
    }
  }
  progress.end(`${fmt(E)} follows`);

  // --- Statuses, in time order over the last 60 days.
  progress.begin('plan: statuses', M);
  const sTime = sortedTimes(M, now - 60 * DAY, now - 60_000, timeRng);
  const sAuthor = new Int32Array(M);
  const sKind = new Uint8Array(M);
  const sRef = new Int32Array(M).fill(-1); // reply parent or reblogged status
  const sVis = new Uint8Array(M);
  const sReplies = new Int32Array(M);
  const sReblogs = new Int32Array(M);
  const sFavs = new Int32Array(M);
  const sIds = new BigInt64Array(M);
  const sTagStart = new Int32Array(M + 1);
  const sTags: number[] = [];
  const statusesCount = new Int32Array(N);
  const lastStatus = new Int32Array(N).fill(-1);
  const tagNamesList = tagNames(TAG_POOL, rng);
  const tagAlias = new Alias(zipfWeights(TAG_POOL, 1.0));
  const tagFirstUse = new Int32Array(TAG_POOL).fill(-1);
  const tagIds = new BigInt64Array(TAG_POOL);
  // Activity: 30 % of accounts never post; the rest Pareto(2)-distributed, somewhat higher for popular accounts.
  const activity = new Float64Array(N);
  for (let i = 0; i < N; i++) activity[i] = rng() < 0.3 ? 0 : (1 / Math.sqrt(1 - rng())) * Math.pow(1 + inDeg[i], 0.25);
  if (activity.every((x) => x === 0)) activity[0] = 1;
  const authorAlias = M > 0 ? new Alias(activity) : null;
  // Recent non-reblog statuses per author (a small ring) and, globally, recent public ones:
  // where replies and reblogs find something to answer or share.
  const R = 16;
  const recent = new Int32Array(N * R);
  const recentCount = new Int32Array(N);
  const G = 8192;
  const globalRecent = new Int32Array(G);
  let globalCount = 0;
  const reblogged = new Set<number>();
  const visCount = [0, 0, 0];
  let replies = 0;
  let reblogs = 0;
  {
    let clockMs = 0;
    const gen = createIdGenerator(NODE.statuses, () => clockMs);
    const tagGen = createIdGenerator(NODE.tags, () => clockMs);
    const drawVis = () => {
      const r = rng();
      return r < 0.78 ? 0 : r < 0.92 ? 1 : 2;
    };
    const recentOf = (f: number): number => {
      const c = recentCount[f];
      if (c === 0) return -1;
      const back = randInt(rng, Math.min(c, 8));
      return recent[f * R + ((c - 1 - back) % R)];
    };
    for (let i = 0; i < M; i++) {
      const a = authorAlias!.sample(rng);
      const r = rng();
      let kind = KIND_ORIGINAL;
      let ref = -1;
      const deg = outDeg[a];
      if (r < 0.08) {
        // A reblog of something public a followee posted recently (else something public from anyone).
        for (let t = 0; t < 4 && ref < 0; t++) {
          const s = deg > 0 ? recentOf(outTargets[outStart[a] + randInt(rng, deg)]) : globalCount > 0 ? globalRecent[randInt(rng, Math.min(globalCount, G))] : -1;
          if (s >= 0 && sVis[s] !== 2 && sAuthor[s] !== a && !reblogged.has(a * M + s)) ref = s;
        }
        if (ref >= 0) {
          kind = KIND_REBLOG;
          reblogged.add(a * M + ref);
        }
      } else if (r < 0.29) {
        // A reply: to one's own latest post (a thread), to a followee's recent post, or to anything public.
        if (rng() < 0.12 && recentCount[a] > 0) ref = recent[a * R + ((recentCount[a] - 1) % R)];
        for (let t = 0; t < 3 && ref < 0 && deg > 0; t++) ref = recentOf(outTargets[outStart[a] + randInt(rng, deg)]);
        if (ref < 0 && globalCount > 0) ref = globalRecent[randInt(rng, Math.min(globalCount, G))];
        if (ref >= 0) kind = KIND_REPLY;
      }
      sAuthor[i] = a;
      sKind[i] = kind;
      sRef[i] = ref;
      sVis[i] = kind === KIND_REBLOG ? 0 : kind === KIND_REPLY && sVis[ref] === 2 ? 2 : drawVis();
      visCount[sVis[i]]++;
      clockMs = sTime[i];
      sIds[i] = BigInt(gen.next());
      statusesCount[a]++;
      lastStatus[a] = i;
      if (kind === KIND_REBLOG) {
        sReblogs[ref]++;
        reblogs++;
      } else {
        if (kind === KIND_REPLY) {
          sReplies[ref]++;
          replies++;
        }
        if (rng() < 0.3) {
          const n = 1 + (rng() < 0.3 ? 1 : 0) + (rng() < 0.1 ? 1 : 0);
          const start = sTags.length;
          for (let k = 0; k < n; k++) {
            const t = tagAlias.sample(rng);
            let dup = false;
            for (let j = start; j < sTags.length; j++) if (sTags[j] === t) dup = true;
            if (dup) continue;
            sTags.push(t);
            if (tagFirstUse[t] < 0) {
              tagFirstUse[t] = i;
              tagIds[t] = BigInt(tagGen.next());
            }
          }
        }
        recent[a * R + (recentCount[a] % R)] = i;
        recentCount[a]++;
        if (sVis[i] !== 2) globalRecent[globalCount++ % G] = i;
      }
      sTagStart[i + 1] = sTags.length;
      if ((i & 4095) === 0) progress.update(i);
    }
  }
  progress.end(`${fmt(replies)} replies, ${fmt(reblogs)} reblogs`);

  // --- Favourites: statuses weighted by their author's audience (with noise), given mostly by followers.
  const favTarget = Math.round(M * FAVOURITES_PER_POST);
  progress.begin('plan: favourites', favTarget);
  const favU = new Int32Array(favTarget);
  const favS = new Int32Array(favTarget);
  const favT = new Float64Array(favTarget);
  let F = 0;
  if (M > 0 && M > reblogs) {
    const w = new Float64Array(M);
    for (let s = 0; s < M; s++) w[s] = sKind[s] === KIND_REBLOG ? 0 : Math.pow(1 + inDeg[sAuthor[s]], 0.6) * Math.exp(0.8 * normal(rng));
    const statusAlias = new Alias(w);
    const seen = new Set<number>();
    for (let attempt = 0; attempt < favTarget * 2 && F < favTarget; attempt++) {
      const s = statusAlias.sample(rng);
      const author = sAuthor[s];
      const followers = inDeg[author];
      const u = followers > 0 && rng() < 0.85 ? inSources[inStart[author] + randInt(rng, followers)] : randInt(rng, N);
      if (u === author) continue;
      if (sVis[s] === 2 && !follows(u, author)) continue;
      const key = u * M + s;
      if (seen.has(key)) continue;
      seen.add(key);
      favU[F] = u;
      favS[F] = s;
      favT[F] = Math.floor(Math.min(now - 1000, sTime[s] + 1000 - Math.log(1 - rng()) * 4 * 3600_000));
      sFavs[s]++;
      F++;
      if ((F & 4095) === 0) progress.update(F);
    }
  }
  progress.end(`${fmt(F)} favourites`);

  // --- Writing. Secondary indexes are dropped first and rebuilt at the end (a sort, far faster
  // than keeping them up to date row by row); the journal is off while loading.
  const database = openSqlite(file);
  let closed = false;
  try {
    await migrateToLatest(database.db);
    const db = database.sqlite;
    db.pragma('journal_mode = OFF');
    db.pragma('synchronous = OFF');
    db.pragma('locking_mode = EXCLUSIVE');
    db.pragma('cache_size = -1000000'); // 1 GB
    db.pragma('temp_store = MEMORY');
    db.pragma('threads = 2'); // index builds sort with a helper thread
    db.pragma('foreign_keys = OFF'); // every reference is to a row of the same plan
    const indexes = db
      .prepare(`SELECT name, sql FROM sqlite_master WHERE type = 'index' AND sql IS NOT NULL`)
      .all() as { name: string; sql: string }[];
    for (const ix of indexes) db.exec(`DROP INDEX "${ix.name}"`);

    const iso = (ms: number) => new Date(ms).toISOString();
    const seedNow = iso(now);
    const accountIdStr = (i: number) => accountIds[i].toString();
    const usernames: string[] = new Array(N);
    const nameRng = makeRng(baseSeed ^ 0x0a11ce);
    for (let i = 0; i < N; i++) {
      usernames[i] = `${ADJECTIVES[randInt(nameRng, ADJECTIVES.length)]}_${WORDS[randInt(nameRng, WORDS.length)]}${i}`;
    }
    const commitEvery = (n: number, i: number) => {
      if (i > 0 && i % n === 0) {
        db.exec('COMMIT');
        db.exec('BEGIN');
      }
    };

    // Accounts, users, the app and a token per account.
    progress.begin('write: accounts, users, tokens', N);
    const authGen = createIdGenerator(NODE.auth, () => now - 3600_000);
    const appId = BigInt(authGen.next());
    db.exec('BEGIN');
    db.prepare(
      `INSERT INTO oauth_applications (id, name, website, redirect_uris, scopes, client_id, client_secret, created_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?)`,
    ).run(appId, SEED_APP_NAME, null, 'urn:ietf:wg:oauth:2.0:oob', SEED_SCOPES, `seed-${sha256(`client:${opts.seed}`).slice(0, 32)}`, sha256(`secret:${opts.seed}:${now}`), iso(now - 3600_000));
    const accIns = inserter(db, 'accounts', [
      'id', 'username', 'username_lower', 'display_name', 'note', 'locked', 'bot', 'discoverable',
      'followers_count', 'following_count', 'statuses_count', 'last_status_at', 'created_at', 'updated_at',
    ]);
    const userIns = inserter(db, 'users', ['account_id', 'email', 'password_hash', 'role', 'locale', 'default_visibility', 'default_sensitive', 'default_language', 'created_at']);
    const tokIns = inserter(db, 'oauth_tokens', ['id', 'token_hash', 'application_id', 'account_id', 'scopes', 'created_at', 'revoked_at']);
    for (let i = 0; i < N; i++) {
      const [adj, word] = usernames[i].replace(/\d+$/, '').split('_');
      const created = iso(accountTime[i]);
      const note = nameRng() < 0.4 ? sentence(nameRng, 4 + randInt(nameRng, 12)) : '';
      accIns.add(
        accountIds[i], usernames[i], usernames[i].toLowerCase(), `${cap(adj)} ${cap(word)}`, note, 0, nameRng() < 0.01 ? 1 : 0, 1,
        inDeg[i], outDeg[i], statusesCount[i], lastStatus[i] >= 0 ? iso(sTime[lastStatus[i]]) : null, created, created,
      );
      userIns.add(accountIds[i], `${usernames[i]}@seed.example.com`, passwordHash, 'user', 'en', 'public', 0, null, created);
      tokIns.add(BigInt(authGen.next()), sha256(benchToken(accountIdStr(i))), appId, accountIds[i], SEED_SCOPES, seedNow, null);
      if ((i & 1023) === 0) progress.update(i);
      commitEvery(20_000, i);
    }
    accIns.flush();
    userIns.flush();
    tokIns.flush();
    db.exec('COMMIT');
    progress.end();

    // Follows, in (follower, followee) order; times in the day after the last account was made.
    progress.begin('write: follows', E);
    {
      let clockMs = 0;
      const gen = createIdGenerator(NODE.follows, () => clockMs);
      const from = now - 61 * DAY;
      const ins = inserter(db, 'follows', ['id', 'account_id', 'target_account_id', 'show_reblogs', 'notify', 'created_at']);
      db.exec('BEGIN');
      let e = 0;
      for (let i = 0; i < N; i++) {
        clockMs = Math.floor(from + (i / N) * DAY);
        const created = iso(clockMs);
        for (let k = outStart[i]; k < outStart[i + 1]; k++, e++) {
          ins.add(BigInt(gen.next()), accountIds[i], accountIds[outTargets[k]], 1, rng() < 0.005 ? 1 : 0, created);
          if ((e & 16383) === 0) progress.update(e);
          commitEvery(500_000, e);
        }
      }
      ins.flush();
      db.exec('COMMIT');
    }
    progress.end();

    // Tags, statuses, mentions, status_tags.
    progress.begin('write: statuses', M);
    let mentions = 0;
    let tagsUsed = 0;
    {
      db.exec('BEGIN');
      const tagIns = inserter(db, 'tags', ['id', 'name', 'created_at'], 50);
      for (let t = 0; t < TAG_POOL; t++) {
        if (tagFirstUse[t] < 0) continue;
        tagIns.add(tagIds[t], tagNamesList[t], iso(sTime[tagFirstUse[t]]));
        tagsUsed++;
      }
      tagIns.flush();
      const stIns = inserter(db, 'statuses', [
        'id', 'account_id', 'text', 'content', 'spoiler_text', 'sensitive', 'visibility', 'language', 'in_reply_to_id',
        'in_reply_to_account_id', 'reblog_of_id', 'application_id', 'distribution', 'replies_count', 'reblogs_count',
        'favourites_count', 'created_at', 'edited_at', 'deleted_at',
      ], 50);
      const menIns = inserter(db, 'mentions', ['status_id', 'account_id']);
      const stTagIns = inserter(db, 'status_tags', ['tag_id', 'status_id']);
      for (let i = 0; i < M; i++) {
        const a = sAuthor[i];
        const kind = sKind[i];
        const ref = sRef[i];
        const distribution = pull[a] ? 'pull' : 'push';
        const created = iso(sTime[i]);
        if (kind === KIND_REBLOG) {
          stIns.add(sIds[i], accountIds[a], '', '', '', 0, 'public', null, null, null, sIds[ref], null, distribution, sReplies[i], sReblogs[i], sFavs[i], created, null, null);
        } else {
          // The text: a mention of the replied-to author (or, sometimes, of a followee), words, maybe a link, the hashtags.
          const mentionMap = new Map<string, { username: string; url: string }>();
          let text = '';
          let mentioned = -1;
          if (kind === KIND_REPLY && sAuthor[ref] !== a) mentioned = sAuthor[ref];
          else if (outDeg[a] > 0 && textRng() < 0.05) mentioned = outTargets[outStart[a] + randInt(textRng, outDeg[a])];
          if (mentioned >= 0) {
            const u = usernames[mentioned];
            text = `@${u} `;
            mentionMap.set(u.toLowerCase(), { username: u, url: accountUrl(urls, u) });
          }
          text += sentence(textRng, 4 + randInt(textRng, 22));
          if (textRng() < 0.35) text += ` ${sentence(textRng, 3 + randInt(textRng, 14))}`;
          if (textRng() < 0.06) text += ` https://example.com/${WORDS[randInt(textRng, WORDS.length)]}/${randInt(textRng, 100_000)}`;
          for (let k = sTagStart[i]; k < sTagStart[i + 1]; k++) text += ` #${tagNamesList[sTags[k]]}`;
          const spoiler = textRng() < 0.02 ? `${cap(WORDS[randInt(textRng, WORDS.length)])} spoilers` : '';
          const content = renderHtml(text, { baseUrl: urls.base, domain: urls.domain, mentions: mentionMap });
          stIns.add(
            sIds[i], accountIds[a], text, content, spoiler, spoiler ? 1 : 0, VIS[sVis[i]], 'en',
            kind === KIND_REPLY ? sIds[ref] : null, kind === KIND_REPLY ? accountIds[sAuthor[ref]] : null, null, appId, distribution,
            sReplies[i], sReblogs[i], sFavs[i], created, null, null,
          );
          if (mentioned >= 0) {
            menIns.add(sIds[i], accountIds[mentioned]);
            mentions++;
          }
          for (let k = sTagStart[i]; k < sTagStart[i + 1]; k++) stTagIns.add(tagIds[sTags[k]], sIds[i]);
        }
        if ((i & 4095) === 0) progress.update(i);
        commitEvery(200_000, i);
      }
      stIns.flush();
      menIns.flush();
      stTagIns.flush();
      db.exec('COMMIT');
      progress.end(`${fmt(tagsUsed)} tags, ${fmt(sTags.length)} status tags, ${fmt(mentions)} mentions`);
    }

    // Favourites, in time (id) order.
    progress.begin('write: favourites', F);
    {
      const order = new Uint32Array(F);
      for (let f = 0; f < F; f++) order[f] = f;
      order.sort((x, y) => favT[x] - favT[y]);
      let clockMs = 0;
      const gen = createIdGenerator(NODE.favourites, () => clockMs);
      const ins = inserter(db, 'favourites', ['id', 'account_id', 'status_id', 'created_at']);
      db.exec('BEGIN');
      for (let k = 0; k < F; k++) {
        const f = order[k];
        clockMs = favT[f];
        ins.add(BigInt(gen.next()), accountIds[favU[f]], sIds[favS[f]], iso(favT[f]));
        if ((k & 16383) === 0) progress.update(k);
        commitEvery(500_000, k);
      }
      ins.flush();
      db.exec('COMMIT');
    }
    progress.end();

    // Home feeds: for each account, the K most recent of its own statuses and those its push
    // followees' fan-out would have delivered (the rules of services/feeds.ts fanOut).
    progress.begin('write: home feeds', N);
    let feedRows = 0;
    {
      const authStart = new Int32Array(N + 1);
      for (let s = 0; s < M; s++) authStart[sAuthor[s] + 1]++;
      for (let i = 0; i < N; i++) authStart[i + 1] += authStart[i];
      const authList = new Int32Array(M);
      {
        const fill = authStart.slice(0, N);
        for (let s = 0; s < M; s++) authList[fill[sAuthor[s]]++] = s;
      }
      const ins = inserter(db, 'home_feed', ['account_id', 'status_id', 'author_id', 'reblog_of_author_id']);
      // A max-heap of list cursors, keyed by the status index each cursor points at.
      const maxLists = maxOut + 1;
      const ptr = new Int32Array(maxLists);
      const lo = new Int32Array(maxLists);
      const heap = new Int32Array(maxLists);
      const picked = new Int32Array(K);
      const key = (l: number) => authList[ptr[l]];
      const siftDown = (size: number, at: number) => {
        for (;;) {
          const l = 2 * at + 1;
          if (l >= size) return;
          const r = l + 1;
          const c = r < size && key(heap[r]) > key(heap[l]) ? r : l;
          if (key(heap[c]) <= key(heap[at])) return;
          const t = heap[c];
          heap[c] = heap[at];
          heap[at] = t;
          at = c;
        }
      };
      db.exec('BEGIN');
      for (let a = 0; a < N; a++) {
        let lists = 0;
        const addList = (author: number) => {
          if (authStart[author + 1] > authStart[author]) {
            lo[lists] = authStart[author];
            ptr[lists] = authStart[author + 1] - 1;
            heap[lists] = lists;
            lists++;
          }
        };
        addList(a);
        for (let e = outStart[a]; e < outStart[a + 1]; e++) if (!pull[outTargets[e]]) addList(outTargets[e]);
        let size = lists;
        for (let at = (size >> 1) - 1; at >= 0; at--) siftDown(size, at);
        let n = 0;
        while (size > 0 && n < K) {
          const l = heap[0];
          const s = authList[ptr[l]];
          const author = sAuthor[s];
          let ok = true;
          if (author !== a) {
            if (sKind[s] === KIND_REPLY) {
              const to = sAuthor[sRef[s]];
              ok = to === author || to === a || follows(a, to);
            } else if (sKind[s] === KIND_REBLOG) {
              ok = sAuthor[sRef[s]] !== a;
            }
          }
          if (ok) picked[n++] = s;
          if (ptr[l] > lo[l]) {
            ptr[l]--;
            siftDown(size, 0);
          } else {
            heap[0] = heap[--size];
            siftDown(size, 0);
          }
        }
        for (let k = n - 1; k >= 0; k--) {
          const s = picked[k];
          ins.add(accountIds[a], sIds[s], accountIds[sAuthor[s]], sKind[s] === KIND_REBLOG ? accountIds[sAuthor[sRef[s]]] : null);
        }
        feedRows += n;
        if ((a & 255) === 0) progress.update(a);
        commitEvery(5_000, a);
      }
      ins.flush();
      db.exec('COMMIT');
    }
    progress.end(`${fmt(feedRows)} rows`);

    progress.begin('indexes', indexes.length);
    indexes.forEach((ix, i) => {
      db.exec(ix.sql);
      progress.update(i + 1);
    });
    progress.end();

    // Planner statistics, as after any bulk load. Without them SQLite guesses, and on this data
    // guesses badly (the home timeline's 'pull' half scanned every status). analysis_limit keeps it
    // to a sample of each index: well under a second. Sampled figures can mislead the planner (they did
    // for the public timeline): the queries concerned no longer depend on them (test/integration/query-plans.test.ts).
    progress.begin('analyze (planner statistics)', 1);
    db.pragma('analysis_limit = 10000');
    db.exec('ANALYZE');
    progress.end();

    // The triggers filled the full-text indexes row by row, leaving each in many segments that every search
    // reads until FTS5's automerge catches up: merged now, as after any bulk load.
    progress.begin('full-text indexes (merge)', 1);
    db.exec(`INSERT INTO statuses_fts (statuses_fts) VALUES ('optimize')`);
    db.exec(`INSERT INTO accounts_fts (accounts_fts) VALUES ('optimize')`);
    progress.end();

    progress.begin('finish (journal back to WAL)', 1);
    db.pragma('foreign_keys = ON');
    db.pragma('locking_mode = NORMAL');
    db.prepare('SELECT count(*) FROM oauth_applications').get(); // releases the exclusive lock
    db.pragma('journal_mode = WAL');
    db.pragma('synchronous = FULL');
    await database.close();
    closed = true;
    progress.end();

    const bytes = ['', '-wal', '-shm'].reduce((n, suffix) => n + (existsSync(file + suffix) ? statSync(file + suffix).size : 0), 0);
    const over = (x: number) => inDeg.reduce((n, d) => n + (d >= x ? 1 : 0), 0);
    return {
      databaseFile: file,
      accounts: N,
      follows: E,
      statuses: M,
      originals: M - replies - reblogs,
      replies,
      reblogs,
      favourites: F,
      tags: tagsUsed,
      statusTags: sTags.length,
      mentions,
      homeFeedRows: feedRows,
      pullAccounts,
      fanoutThreshold: threshold,
      feedDepth: K,
      followers: { max: inDeg.reduce((m, x) => Math.max(m, x), 0), median: median(inDeg), over50k: over(50_000), over10k: over(10_000) },
      following: { max: outDeg.reduce((m, x) => Math.max(m, x), 0), median: median(outDeg) },
      statusesPerAccount: { max: statusesCount.reduce((m, x) => Math.max(m, x), 0), median: median(statusesCount) },
      visibility: { public: visCount[0], unlisted: visCount[1], private: visCount[2] },
      password: SEED_PASSWORD,
      tokenPattern: benchToken('<accountId>'),
      bytes,
      seconds: Math.round((performance.now() - started) / 100) / 10,
    };
  } finally {
    if (!closed) await database.close();
  }
}

function cap(w: string): string {
  return w.charAt(0).toUpperCase() + w.slice(1);
}

const wordAlias = new Alias(zipfWeights(WORDS.length, 0.9));
function sentence(rng: Rng, n: number): string {
  const out: string[] = new Array(n);
  for (let i = 0; i < n; i++) out[i] = WORDS[wordAlias.sample(rng)];
  out[0] = cap(out[0]);
  return `${out.join(' ')}${rng() < 0.8 ? '.' : rng() < 0.5 ? '!' : '?'}`;
}

/** Refuses a database that holds data, unless `force` (which deletes it). */
function prepareFile(file: string, force: boolean): void {
  if (!existsSync(file)) return;
  let rows = 0;
  {
    const probe = new SQLite(file, { readonly: true, fileMustExist: true });
    try {
      const tables = probe.prepare(`SELECT name FROM sqlite_master WHERE type = 'table' AND name IN ('accounts', 'statuses')`).all() as { name: string }[];
      for (const t of tables) rows += Number((probe.prepare(`SELECT count(*) AS n FROM ${t.name}`).get() as { n: number }).n);
    } finally {
      probe.close();
    }
  }
  if (rows === 0) return;
  if (!force) throw new Error(`refusing to seed: ${file} already holds data (${rows} accounts and statuses); use --force to replace it`);
  for (const suffix of ['', '-wal', '-shm', '-journal']) rmSync(file + suffix, { force: true });
}

// ---------------------------------------------------------------------------
// The command.

export async function seedCommand(args: string[]): Promise<number> {
  const { values } = parseArgs({
    args,
    options: {
      accounts: { type: 'string', default: '1000' },
      posts: { type: 'string', default: '10000' },
      'feed-depth': { type: 'string', default: '400' },
      seed: { type: 'string', default: '1' },
      force: { type: 'boolean', default: false },
      json: { type: 'boolean', default: false },
      'data-dir': { type: 'string' },
      config: { type: 'string' },
    },
    strict: true,
  });
  const int = (name: string, v: string | undefined) => {
    const n = Number(String(v).replace(/_/g, ''));
    if (!Number.isInteger(n)) throw new Error(`--${name} must be an integer, got ${v}`);
    return n;
  };
  const config = loadConfig({ file: values.config, overrides: { dataDir: values['data-dir'] } });
  const summary = await seed({
    config,
    accounts: int('accounts', values.accounts),
    posts: int('posts', values.posts),
    feedDepth: int('feed-depth', values['feed-depth']),
    seed: values.seed!,
    force: values.force!,
    progress: new Progress(process.stderr),
  });
  if (values.json) {
    console.log(JSON.stringify(summary));
    return 0;
  }
  const s = summary;
  console.log(
    [
      `seeded ${s.databaseFile} in ${s.seconds} s (${(s.bytes / 1024 ** 2).toFixed(0)} MiB)`,
      `  accounts      ${fmt(s.accounts)} (${fmt(s.pullAccounts)} with ≥ ${fmt(s.fanoutThreshold)} followers: their statuses are 'pull')`,
      `  follows       ${fmt(s.follows)} (followers: median ${fmt(s.followers.median)}, max ${fmt(s.followers.max)}, ${s.followers.over50k} accounts ≥ 50,000; following: median ${fmt(s.following.median)}, max ${fmt(s.following.max)})`,
      `  statuses      ${fmt(s.statuses)} (${fmt(s.originals)} originals, ${fmt(s.replies)} replies, ${fmt(s.reblogs)} reblogs; per account median ${fmt(s.statusesPerAccount.median)}, max ${fmt(s.statusesPerAccount.max)})`,
      `  visibility    ${fmt(s.visibility.public)} public, ${fmt(s.visibility.unlisted)} unlisted, ${fmt(s.visibility.private)} private`,
      `  favourites    ${fmt(s.favourites)}`,
      `  tags          ${fmt(s.tags)} (${fmt(s.statusTags)} uses), mentions ${fmt(s.mentions)}`,
      `  home feeds    ${fmt(s.homeFeedRows)} rows (at most the ${s.feedDepth} most recent per account)`,
      `  sign in       any username or <username>@seed.example.com, password "${s.password}"`,
      `  tokens        Bearer ${s.tokenPattern} (app "${SEED_APP_NAME}", scopes "${SEED_SCOPES}")`,
    ].join('\n'),
  );
  return 0;
}
