import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { prettyLogLine } from '../src/index.ts';

const at = new Date(2026, 0, 2, 3, 4, 5, 6).getTime();

describe('prettyLogLine', () => {
  it('writes one line: local time, level, message, then the fields of the entry', () => {
    const line = prettyLogLine({
      level: 30,
      time: at,
      pid: 12,
      hostname: 'vm',
      name: 'chronos-worker',
      msg: 'run finished',
      job: 'nightly report',
      status: 'SUCCESS',
      durationMs: 41,
      types: ['HTTP', 'DUMMY'],
    });
    expect(line).toBe(
      '03:04:05.006 INFO  run finished job="nightly report" status=SUCCESS durationMs=41 types=["HTTP","DUMMY"]\n',
    );
  });

  it("keeps an error's type and message on the line and adds its stack for ERROR and above", () => {
    const err = {
      type: 'Error',
      message: 'connect ECONNREFUSED',
      code: 'ECONNREFUSED',
      stack: 'Error: x\n    at a (f.ts:1)\n    at b (g.ts:2)',
    };
    expect(prettyLogLine({ level: 40, time: at, msg: 'retrying', err })).toBe(
      '03:04:05.006 WARN  retrying err="Error: connect ECONNREFUSED (ECONNREFUSED)"\n',
    );
    expect(prettyLogLine({ level: 50, time: at, msg: 'failed', err }).split('\n')).toEqual([
      '03:04:05.006 ERROR failed err="Error: connect ECONNREFUSED (ECONNREFUSED)"',
      '    at a (f.ts:1)',
      '    at b (g.ts:2)',
      '',
    ]);
  });
});

describe('logDestination', () => {
  it('when the reader of stdout is gone, writing returns at once instead of blocking the process', async () => {
    const destination = fileURLToPath(new URL('../src/log-destination.ts', import.meta.url));
    // The child logs one line, waits until the test closes its stdout, then logs on and exits.
    const script = `
      import { logDestination } from ${JSON.stringify(destination)};
      const out = logDestination(process.argv[2]);
      out.write('{"level":30,"msg":"ready"}\\n');
      process.stdin.once('data', () => {
        for (let i = 0; i < 1000; i++) out.write(JSON.stringify({ level: 60, msg: 'x'.repeat(1000) }) + '\\n');
        process.exit(0);
      });`;
    for (const format of ['json', 'pretty']) {
      const child = spawn(
        process.execPath,
        ['--import', 'tsx', '--input-type=module', '-e', script, format],
        {
          stdio: ['pipe', 'pipe', 'inherit'],
        },
      );
      const [first] = (await once(child.stdout, 'data')) as [Buffer];
      expect(first.toString()).toMatch(/ready/);
      child.stdout.destroy();
      child.stdin.write('go\n');
      const [code] = (await once(child, 'exit')) as [number | null];
      expect(code).toBe(0);
    }
  });
});
