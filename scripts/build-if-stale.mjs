// `npm test`'s pretest: builds dist/ when it is absent or older than its sources, so the tests that
// run the built service as users run it (admin:create, the seed start-up log, tracing) run on a
// fresh clone instead of being skipped. A current dist/ (CI builds first) is left alone.
import { spawnSync } from 'node:child_process';
import { existsSync, readdirSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { ROOT } from './service-process.mjs';

/** What `npm run build` reads: sources, migrations and the build configuration. */
const INPUTS = ['src', 'migrations', 'tsconfig.json', 'tsconfig.build.json', 'nest-cli.json'];
const OUTPUT = join(ROOT, 'dist/src/main.js');

/** The newest modification time under `path`; directories count too (a deleted file changes its folder). */
function newest(path) {
  const stat = statSync(path, { throwIfNoEntry: false });
  if (!stat) return 0;
  if (!stat.isDirectory()) return stat.mtimeMs;
  let latest = stat.mtimeMs;
  for (const entry of readdirSync(path)) latest = Math.max(latest, newest(join(path, entry)));
  return latest;
}

const built = statSync(OUTPUT, { throwIfNoEntry: false })?.mtimeMs ?? 0;
const reason = !built
  ? 'dist/ is absent'
  : INPUTS.some((input) => newest(join(ROOT, input)) > built)
    ? 'dist/ is older than src/'
    : undefined;
if (reason) {
  console.log(`pretest: ${reason}: npm run build (the tests of the built service need it)`);
  const build = spawnSync('npm', ['run', 'build', '--silent'], { cwd: ROOT, stdio: 'inherit' });
  if (build.status !== 0) {
    // tsc emits despite type errors, and type errors are `npm run check`'s to report: the tests
    // still run on what was emitted, and fail on their own if it does not behave.
    if (!existsSync(OUTPUT)) process.exit(build.status ?? 1);
    console.log('pretest: the build reported errors (above); the tests use what it emitted');
  }
}
