/** Child-process tests run the compiled CLI, so the build must be current before any test starts. */
import { execFileSync } from 'node:child_process';

export default function setup(): void {
  // Both test projects list this setup; they share one main process, so build once.
  if (process.env.STARLING_TEST_BUILT) return;
  execFileSync('npx', ['tsc', '-p', 'tsconfig.build.json'], { stdio: 'inherit' });
  process.env.STARLING_TEST_BUILT = '1';
}
