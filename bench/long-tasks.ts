/**
 * What held the event loop: the long tasks of a CPU profile (node:inspector's
 * Profiler, .cpuprofile format). A long task is a run of consecutive samples
 * that are not "(idle)"; every request waiting meanwhile waits for it, so the
 * longest of them are a floor under a busy node's tail latency. Each is put
 * down to the innermost frames of Starling's own code (src/) in its samples,
 * which say which path of the server did the work.
 */
import { writeFileSync } from 'node:fs';
import { Session } from 'node:inspector/promises';

interface ProfileNode {
  id: number;
  callFrame: { functionName: string; url: string; lineNumber: number };
  children?: number[];
}

export interface CpuProfile {
  nodes: ProfileNode[];
  samples: number[];
  timeDeltas: number[];
}

/** Starts the V8 sampling profiler in this process; `stop` writes the profile to `file` and returns it. */
export async function startProfiling(file: string, intervalUs = 250): Promise<{ stop(): Promise<CpuProfile> }> {
  const session = new Session();
  session.connect();
  await session.post('Profiler.enable');
  await session.post('Profiler.setSamplingInterval', { interval: intervalUs });
  await session.post('Profiler.start');
  return {
    async stop() {
      const { profile } = await session.post('Profiler.stop');
      session.disconnect();
      writeFileSync(file, JSON.stringify(profile));
      return profile as unknown as CpuProfile;
    },
  };
}

const SKIP = new Set(['(idle)', '(program)', '(root)']);

/** The long tasks of a profile, longest first, each with where its time went in src/ (ms by frame). */
export function longTasks(profile: CpuProfile, minMs = 15): { ms: number; where: [string, number][] }[] {
  const byId = new Map(profile.nodes.map((n) => [n.id, n]));
  const parent = new Map<number, number>();
  for (const n of profile.nodes) for (const c of n.children ?? []) parent.set(c, n.id);
  const label = (id: number): string => {
    // The innermost frame of our own code, else the innermost frame at all (GC, native code).
    let inner: string | null = null;
    for (let at: number | undefined = id; at !== undefined; at = parent.get(at)) {
      const f = byId.get(at)!.callFrame;
      inner ??= f.functionName || '(anonymous)';
      const src = f.url.indexOf('/src/');
      if (src >= 0 && !f.url.includes('node_modules')) return `${f.functionName || '(anonymous)'} ${f.url.slice(src + 1)}:${f.lineNumber + 1}`;
    }
    return inner ?? '?';
  };
  const tasks: { ms: number; where: [string, number][] }[] = [];
  let run: Map<string, number> | null = null;
  let runMs = 0;
  const close = () => {
    if (run && runMs >= minMs) tasks.push({ ms: runMs, where: [...run].sort((a, b) => b[1] - a[1]).slice(0, 4) });
    run = null;
    runMs = 0;
  };
  profile.samples.forEach((id, i) => {
    const dt = (profile.timeDeltas[i + 1] ?? 0) / 1000;
    if (byId.get(id)!.callFrame.functionName === '(idle)') return close();
    run ??= new Map();
    const key = SKIP.has(byId.get(id)!.callFrame.functionName) ? '(outside JavaScript)' : label(id);
    run.set(key, (run.get(key) ?? 0) + dt);
    runMs += dt;
  });
  close();
  return tasks.sort((a, b) => b.ms - a.ms);
}

/** The long tasks, and the frames that spent most time in them altogether. */
export function describeLongTasks(profile: CpuProfile, minMs = 15): string {
  const tasks = longTasks(profile, minMs);
  if (tasks.length === 0) return `no task held the event loop ${minMs} ms or more`;
  const total = new Map<string, number>();
  for (const t of tasks) for (const [k, v] of t.where) total.set(k, (total.get(k) ?? 0) + v);
  const f = (x: number) => `${x.toFixed(1)} ms`;
  return [
    `${tasks.length} tasks held the event loop ${minMs} ms or more (${f(tasks.reduce((a, t) => a + t.ms, 0))} in all); the longest:`,
    ...tasks.slice(0, 8).map((t) => `  ${f(t.ms)}: ${t.where.map(([k, v]) => `${k} ${f(v)}`).join('; ')}`),
    'where their time went, in all:',
    ...[...total].sort((a, b) => b[1] - a[1]).slice(0, 10).map(([k, v]) => `  ${f(v)}  ${k}`),
  ].join('\n');
}
