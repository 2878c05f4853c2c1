import { execFile } from 'node:child_process';
import { existsSync } from 'node:fs';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createScriptExecutor, type ScriptOutput } from '../src/script.ts';
import { lookupUser } from '../src/script/process.ts';
import { rejection } from './helpers.ts';
import { processes, scriptCtx, stdoutLines, waitFor } from './script-helpers.ts';

// Everything here runs scripts as `nobody`; RLIMIT_NPROC counts that user's processes across runs,
// so these tests live in one file and run one after the other.
// Workers of this kind run as root and the system has `nobody`: these tests need both, and fail
// (rather than skip) without them.
const nobody = await lookupUser('nobody', '/usr/bin:/bin');

const aliveOf = async (uid: number) => (await processes()).filter((p) => p.uid === uid && p.state !== 'Z');

describe('SCRIPT executor with runAs (a root worker)', { timeout: 60_000 }, () => {
  it('runs as root, as workers of this kind do', () => {
    expect(process.getuid?.()).toBe(0);
  });

  const uid = nobody.uid;
  const run = createScriptExecutor({ enabled: true, runAs: 'nobody' });
  beforeAll(() => {
    process.env['DATABASE_URL'] = 'postgres://chronos:hunter2@db/chronos';
  });
  afterAll(() => {
    delete process.env['DATABASE_URL'];
  });

  it("runs as the user, in a private directory it owns, unable to read the worker's environment", async () => {
    const ctx = scriptCtx();
    await run(
      {
        scriptContent: [
          'id -un',
          'stat -c "%U %a" .',
          'cat /proc/$PPID/environ >/dev/null 2>&1 && echo worker-env-readable || echo worker-env-denied',
          'grep NoNewPrivs /proc/self/status',
          'pwd',
        ].join('\n'),
      },
      ctx,
    );
    const [user, dir, environ, noNewPrivs, workdir] = stdoutLines(ctx);
    expect(user).toBe('nobody');
    expect(dir).toBe('nobody 700');
    expect(environ).toBe('worker-env-denied');
    expect(noNewPrivs).toMatch(/NoNewPrivs:\s+1/);
    expect(existsSync(workdir ?? '/nonexistent')).toBe(false);
  });

  it('contains a fork bomb with maxProcesses; the worker keeps serving and nothing of it survives', async () => {
    const before = await aliveOf(uid);
    const controller = new AbortController();
    const ctx = scriptCtx({ signal: controller.signal });
    let maxLagMs = 0;
    let last = performance.now();
    const ticker = setInterval(() => {
      const now = performance.now();
      maxLagMs = Math.max(maxLagMs, now - last - 20);
      last = now;
    }, 20);
    try {
      const running = rejection(() =>
        run(
          {
            scriptContent: 'echo bombing; :(){ :|:& };:; sleep 1000',
            metadata: { limits: { maxProcesses: 16 } },
          },
          ctx,
        ),
      );
      await waitFor(() => stdoutLines(ctx).includes('bombing'));
      await new Promise((resolve) => setTimeout(resolve, 1500));
      const during = (await aliveOf(uid)).length - before.length;
      controller.abort(new Error('run timed out'));
      expect((await running).message).toBe('run timed out');
      // RLIMIT_NPROC counts threads too, so processes stay at or below the limit.
      expect(during).toBeGreaterThan(1);
      expect(during).toBeLessThanOrEqual(16);
      expect(maxLagMs).toBeLessThan(1000);
    } finally {
      clearInterval(ticker);
    }
    expect(await aliveOf(uid)).toEqual(before);
    // The worker still starts processes, and the user's process budget is free again.
    expect((await promisify(execFile)('echo', ['still serving'])).stdout).toBe('still serving\n');
    const next = await run({ scriptContent: 'echo after the bomb' }, scriptCtx());
    expect((next.output as ScriptOutput).stdoutTail).toBe('after the bomb\n');
  });

  it('fails with RUN_AS_FAILED for an unknown user', async () => {
    const err = await rejection(() =>
      createScriptExecutor({ enabled: true, runAs: 'no-such-user-chronos' })(
        { scriptContent: 'true' },
        scriptCtx(),
      ),
    );
    expect(err).toMatchObject({ code: 'RUN_AS_FAILED' });
    expect(err.message).toContain('no such user');
  });
});
