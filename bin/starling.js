#!/usr/bin/env node
// The CLI runs from the compiled output; `npm install` (prepare) and `npm start` build it.
import { main } from '../dist/cli/main.js';

main(process.argv.slice(2)).then(
  (code) => { if (typeof code === 'number') process.exitCode = code; },
  (err) => { console.error(err instanceof Error ? err.message : err); process.exitCode = 1; },
);
