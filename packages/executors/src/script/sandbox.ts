// The namespace sandbox of SCRIPT runs: what the worker starts, what it tells the sandbox's init
// (sandbox-init.pl) on fd 3, and how it reads the init's report. The init does the work inside.
import { isAbsolute, normalize } from 'node:path';
import { fileURLToPath } from 'node:url';

/**
 * The top-level system paths a sandboxed script sees, read-only (those that exist; a symlink such as
 * Debian's `/bin -> usr/bin` is copied as a symlink). Nothing else of the host is visible unless
 * given as a visible path: no /home, /root, /var, /opt, /srv, /run, /mnt, no application folder.
 */
export const SANDBOX_SYSTEM_PATHS: readonly string[] = Object.freeze([
  '/usr',
  '/bin',
  '/sbin',
  '/lib',
  '/lib32',
  '/lib64',
  '/libx32',
  '/etc',
]);

/** The init of every sandbox: PID 1 of the run's namespaces. */
export const SANDBOX_INIT: string = fileURLToPath(new URL('./sandbox-init.pl', import.meta.url));

/** A host path a sandboxed script sees at the same path. */
export interface ScriptVisiblePath {
  path: string;
  /** @defaultValue false (read-only) */
  writable?: boolean;
}

/** The programs the sandbox needs besides the interpreter and prlimit. */
export const SANDBOX_TOOLS = ['unshare', 'setpriv', 'perl', 'mount', 'umount', 'pivot_root'] as const;
export type SandboxTool = (typeof SANDBOX_TOOLS)[number];

export interface SandboxSpec {
  /** An empty folder of the host the new root is mounted on (in the private mount namespace). */
  root: string;
  /** The run's working directory, visible read-write at the same path. */
  workdir: string;
  uid: number;
  gid: number;
  tmpSizeMb: number;
  visible: readonly ScriptVisiblePath[];
  /** Covered by an empty read-only folder (or /dev/null for a file) where visible. */
  hidden: readonly string[];
  tools: Record<SandboxTool, string>;
  /** The script's whole environment. */
  env: Record<string, string>;
  /** prlimit … interpreter script: run as uid/gid by the init. */
  command: readonly string[];
}

/** `a` is `b` or lies inside it. */
function within(a: string, b: string): boolean {
  return a === b || a.startsWith(b === '/' ? '/' : `${b}/`);
}

/**
 * The hidden paths worth covering: `/` never, nor a path holding something the script must see
 * (a system path, a visible path, its working directory) — a visible path inside a hidden one wins.
 */
export function coverablePaths(
  hidden: readonly string[],
  visible: readonly string[],
): { covered: string[]; skipped: string[] } {
  const covered: string[] = [];
  const skipped: string[] = [];
  for (const path of new Set(hidden.map((p) => normalize(p).replace(/(.)\/+$/, '$1')))) {
    if (path === '/' || visible.some((v) => within(v, path))) skipped.push(path);
    else covered.push(path);
  }
  return { covered, skipped };
}

/** `/data/in`, `/data/out:rw`: a visible path as SCRIPT_VISIBLE_PATHS writes it. */
export function parseVisiblePath(text: string): ScriptVisiblePath {
  const m = /^(.*?)(?::(ro|rw))?$/.exec(text.trim());
  const path = m?.[1] ?? '';
  if (!isAbsolute(path)) throw new Error(`${JSON.stringify(text)} is not an absolute path`);
  return { path: normalize(path), writable: m?.[2] === 'rw' };
}

/**
 * What the init reads on fd 3: NUL-terminated `key=value` entries and an empty one at the end.
 * @throws Error when a value holds a NUL byte (no path, variable or argument can).
 */
export function sandboxInstructions(spec: SandboxSpec): Buffer {
  const entries: string[] = [
    `root=${spec.root}`,
    `workdir=${spec.workdir}`,
    `uid=${spec.uid}`,
    `gid=${spec.gid}`,
    `tmpsize=${spec.tmpSizeMb}m`,
    `mount=${spec.tools.mount}`,
    `umount=${spec.tools.umount}`,
    `pivot_root=${spec.tools.pivot_root}`,
    ...SANDBOX_SYSTEM_PATHS.map((p) => `system=${p}`),
    ...spec.visible.map((v) => `${v.writable ? 'rw' : 'ro'}=${v.path}`),
    ...spec.hidden.map((p) => `hide=${p}`),
    ...Object.entries(spec.env).map(([name, value]) => `env=${name}=${value}`),
    ...spec.command.map((arg) => `arg=${arg}`),
  ];
  const bad = entries.find((e) => e.includes('\0'));
  if (bad !== undefined) throw new Error(`${bad.split('=')[0]} holds a NUL byte`);
  return Buffer.from(`${entries.join('\0')}\0\0`, 'utf8');
}

/** How the init says the command ended. */
export type SandboxReport =
  { kind: 'exit'; code: number } | { kind: 'signal'; signal: number } | { kind: 'error'; message: string };

/**
 * What the init reported: its first error if any (the command's exit status after an error says
 * nothing more), else how the command ended; null when it said nothing (it never got that far).
 */
export function parseSandboxReport(text: string): SandboxReport | null {
  let report: SandboxReport | null = null;
  for (const line of text.split('\n')) {
    const m = /^(exit|signal|error) (.*)$/.exec(line);
    if (!m) continue;
    const [, kind, rest = ''] = m;
    if (kind === 'error') return { kind, message: rest };
    if (/^\d+$/.test(rest)) {
      report = kind === 'exit' ? { kind, code: Number(rest) } : { kind: 'signal', signal: Number(rest) };
    }
  }
  return report;
}

/**
 * The argv that starts a sandbox (run by the worker as root, with an empty environment):
 * `setpriv --pdeathsig KILL` makes unshare die with the worker, `--kill-child` makes the init die
 * with unshare, and the kernel kills every process of a PID namespace whose init died.
 */
export function sandboxCommand(tools: Record<SandboxTool, string>): { command: string; args: string[] } {
  return {
    command: tools.setpriv,
    args: [
      '--pdeathsig',
      'KILL',
      '--',
      tools.unshare,
      '--pid',
      '--mount',
      '--fork',
      '--kill-child=SIGKILL',
      '--propagation',
      'private',
      '--',
      tools.perl,
      SANDBOX_INIT,
    ],
  };
}
