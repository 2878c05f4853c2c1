// Runs every workspace's test suite through turbo, then prints the plain total counted from the
// vitest JSON reports each package writes (`.reports/vitest.json`). The last line is always
// `N passed, N failed`; the exit code is non-zero when anything failed or did not report.
import { spawnSync } from 'node:child_process';
import { existsSync, readFileSync, readdirSync, rmSync, statSync } from 'node:fs';
import { join } from 'node:path';

const root = new URL('..', import.meta.url).pathname;
const pnpm = process.env.npm_execpath?.includes('pnpm')
  ? [process.execPath, process.env.npm_execpath]
  : ['pnpm'];
const run = (args, opts = {}) =>
  spawnSync(pnpm[0], [...pnpm.slice(1), ...args], { cwd: root, stdio: 'inherit', ...opts });

// A fresh clone has no dependencies yet: install them (the lockfile decides the versions).
const modules = join(root, 'node_modules', '.modules.yaml');
if (!existsSync(modules) || statSync(modules).mtimeMs < statSync(join(root, 'pnpm-lock.yaml')).mtimeMs) {
  console.log('installing dependencies (pnpm install --frozen-lockfile)');
  if (run(['install', '--frozen-lockfile']).status !== 0) {
    console.log('0 passed, 1 failed');
    process.exit(1);
  }
}
const groups = ['apps', 'packages'];
const dirs = [
  ...groups.flatMap((g) =>
    existsSync(join(root, g)) ? readdirSync(join(root, g)).map((d) => join(root, g, d)) : [],
  ),
  join(root, 'e2e'),
].filter((d) => {
  const manifest = join(d, 'package.json');
  return existsSync(manifest) && JSON.parse(readFileSync(manifest, 'utf8')).scripts?.test;
});

for (const d of dirs) rmSync(join(d, '.reports'), { recursive: true, force: true });

const turbo = run(
  [
    'exec',
    'turbo',
    'run',
    'test',
    '--continue',
    '--env-mode=loose',
    '--concurrency=3',
    ...process.argv.slice(2),
  ],
  { env: { ...process.env, TURBO_TELEMETRY_DISABLED: '1', FORCE_COLOR: '0' } },
);

let passed = 0;
let failed = 0;
let skipped = 0;
const missing = [];
for (const d of dirs) {
  const report = join(d, '.reports', 'vitest.json');
  if (!existsSync(report)) {
    missing.push(d.slice(root.length));
    continue;
  }
  const r = JSON.parse(readFileSync(report, 'utf8'));
  passed += r.numPassedTests;
  failed += r.numFailedTests;
  skipped += r.numPendingTests + r.numTodoTests;
  // A file that failed outside its tests (it did not load, or a beforeAll/afterAll hook threw: its
  // tests then count as skipped) has no failed test in the counts; count the file as one failure.
  failed += r.testResults.filter(
    (f) => f.status === 'failed' && !f.assertionResults.some((a) => a.status === 'failed'),
  ).length;
}
if (missing.length > 0) {
  // A package whose runner crashed before reporting counts as one failure each.
  console.log(`no test report from: ${missing.join(', ')}`);
  failed += missing.length;
}
console.log(`${passed} passed, ${failed} failed${skipped ? `, ${skipped} skipped` : ''}`);
process.exit(turbo.status !== 0 || failed > 0 ? 1 : 0);
