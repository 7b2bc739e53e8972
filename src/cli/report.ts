/** What the operator commands (backup, drills, PostgreSQL backups) share in how they report. */

/** Runs a command body; a failure becomes the one-line reason (thrown for bin/starling.js to print) and, with --json, a JSON result. */
export async function reported(json: boolean | undefined, body: () => Promise<number>): Promise<number> {
  try {
    return await body();
  } catch (err) {
    if (json) console.log(JSON.stringify({ ok: false, error: err instanceof Error ? err.message : String(err) }));
    throw err;
  }
}

export const secs = (ms: number) => `${(ms / 1000).toFixed(1)} s`;
