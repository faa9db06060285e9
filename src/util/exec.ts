import type { execa as Execa } from 'execa';
import { EnvironmentError, ToolError } from '../errors.js';

/** execa, loaded when a command first runs a process: the commands that start none do not pay for it. */
export async function loadExeca(): Promise<typeof Execa> {
  return (await import('execa')).execa;
}

/** Every external command lab runs for its work (qemu-img, ip, bsdtar, ...): argument array, LANG=C, a hard timeout, one readable error. */
export async function run(file: string, args: string[], opts: { timeoutMs?: number; what?: string } = {}): Promise<string> {
  const line = [file, ...args].join(' ');
  if (process.env.LAB_DEBUG) process.stderr.write(`debug: ${line}\n`);
  const execa = await loadExeca();
  const r = await execa(file, args, { reject: false, timeout: opts.timeoutMs ?? 60_000, env: { LANG: 'C', LC_ALL: 'C' }, stdin: 'ignore' });
  if ((r as { code?: string }).code === 'ENOENT' || r.exitCode === 127) {
    throw new EnvironmentError(`${file} is not installed`, `install it (lab doctor lists what the provider needs)`);
  }
  if (r.timedOut) throw new ToolError(`${opts.what ?? line}: no answer in ${Math.round((opts.timeoutMs ?? 60_000) / 1000)} s`, file, undefined, String(r.stderr));
  if (r.exitCode !== 0) {
    const said = String(r.stderr || r.stdout).trim().split('\n').filter(Boolean).slice(-2).join(' / ');
    throw new ToolError(`${opts.what ?? line} failed (exit ${r.exitCode}): ${said || 'no message'}`, file, r.exitCode, String(r.stderr));
  }
  return String(r.stdout);
}

/** Where a command is on PATH, or undefined. */
export const which = async (cmd: string) => (await (await loadExeca())('sh', ['-c', `command -v ${cmd}`], { reject: false })).stdout.trim() || undefined;
export const firstLine = (s: string) => s.trim().split('\n')[0] ?? '';

