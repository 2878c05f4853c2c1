import { readdir, readFile } from 'node:fs/promises';
import type { ExecContext } from '../src/index.ts';
import { makeCtx } from './helpers.ts';

/** A context with a run id of its own, so the executor's /proc sweep never touches another test's run. */
export function scriptCtx(overrides: Partial<ExecContext> = {}): ReturnType<typeof makeCtx> {
  const runId = `01JSCRIPTTEST${Math.random().toString(36).slice(2, 12).toUpperCase().padEnd(10, '0')}`;
  return makeCtx({ runId, ...overrides });
}

export function stdoutLines(ctx: ReturnType<typeof makeCtx>): string[] {
  return ctx.log.lines.filter((l) => l.context?.['stream'] === 'stdout').map((l) => l.msg);
}

/** The pid the executor logged when the script started: also its process group id. */
export function startedPid(ctx: ReturnType<typeof makeCtx>): number | undefined {
  const line = ctx.log.lines.find((l) => l.msg === 'script started');
  return line?.context?.['pid'] as number | undefined;
}

export async function waitFor(check: () => boolean, timeoutMs = 5000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!check()) {
    if (Date.now() > deadline) throw new Error('timed out waiting');
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
}

interface ProcInfo {
  pid: number;
  pgid: number;
  uid: number;
  /** R, S, D, Z (zombie), ... */
  state: string;
  cmdline: string;
}

/** Every process (zombies included), from /proc. */
export async function processes(): Promise<ProcInfo[]> {
  const out: ProcInfo[] = [];
  for (const entry of await readdir('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      const stat = await readFile(`/proc/${entry}/stat`, 'utf8');
      const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
      const status = await readFile(`/proc/${entry}/status`, 'utf8');
      const uid = Number(/^Uid:\s+(\d+)/m.exec(status)?.[1]);
      const cmdline = (await readFile(`/proc/${entry}/cmdline`, 'utf8')).replaceAll('\0', ' ').trim();
      out.push({ pid: Number(entry), pgid: Number(fields[2]), uid, state: fields[0] ?? '?', cmdline });
    } catch {
      // exited while we looked
    }
  }
  return out;
}

/** The processes of a group that are not dead (zombies wait for PID 1 to reap them, they do not run). */
export async function liveMembers(pgid: number | undefined): Promise<ProcInfo[]> {
  return (await processes()).filter((p) => p.pgid === pgid && p.state !== 'Z');
}
