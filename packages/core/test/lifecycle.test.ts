import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';

const lifecycle = fileURLToPath(new URL('../src/lifecycle.ts', import.meta.url));

/**
 * A process whose service stops cleanly; it says "up" once it waits. With an IPC channel (as the
 * launcher starts the apps) the channel's end is its supervisor's death.
 */
function serviceProcess(withChannel: boolean) {
  const script = `
    import { stopOnSignals } from ${JSON.stringify(lifecycle)};
    const log = { info: (o, m) => process.stderr.write(m + ' ' + JSON.stringify(o) + '\\n'), error: () => {} };
    const timer = setInterval(() => {}, 1000);
    stopOnSignals({ stop: async () => clearInterval(timer) }, log, { forceAfterMs: 60_000 });
    process.stdout.write('up\\n');`;
  const child = spawn(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', script], {
    stdio: withChannel ? ['ignore', 'pipe', 'pipe', 'ipc'] : ['ignore', 'pipe', 'pipe'],
  });
  const { stdout, stderr } = child;
  if (!stdout || !stderr) throw new Error('spawned without pipes');
  return { child, stdout, stderr };
}

describe('stopOnSignals', () => {
  it('when the supervisor that opened its IPC channel is gone, stops the service and exits 0', async () => {
    const { child, stdout, stderr: errors } = serviceProcess(true);
    let stderr = '';
    errors.on('data', (d: Buffer) => (stderr += d.toString()));
    await once(stdout, 'data');
    // What a SIGKILLed launcher does to the channel: its end closes.
    child.disconnect();
    const [code] = (await once(child, 'exit')) as [number | null];
    expect(code, stderr).toBe(0);
    expect(stderr).toContain('stopping {"supervisor":"gone"}');
    expect(stderr).toContain('stopped');
  });

  it('without an IPC channel, SIGTERM stops it (the channel watch stays off)', async () => {
    const { child, stdout } = serviceProcess(false);
    await once(stdout, 'data');
    child.kill('SIGTERM');
    const [code] = (await once(child, 'exit')) as [number | null];
    expect(code).toBe(0);
  });
});
