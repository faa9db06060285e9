import { execa } from 'execa';
import { EnvironmentError, LabError } from '../errors.js';

/** Every external command of a provider: argument array, LANG=C, a hard timeout, one readable error. */
export async function run(file: string, args: string[], opts: { timeoutMs?: number; what?: string } = {}): Promise<string> {
  const line = [file, ...args].join(' ');
  if (process.env.LAB_DEBUG) process.stderr.write(`debug: ${line}\n`);
  const r = await execa(file, args, { reject: false, timeout: opts.timeoutMs ?? 60_000, env: { LANG: 'C', LC_ALL: 'C' }, stdin: 'ignore' });
  if ((r as { code?: string }).code === 'ENOENT' || r.exitCode === 127) {
    throw new EnvironmentError(`${file} is not installed`, `install it (lab doctor lists what the provider needs)`);
  }
  if (r.timedOut) throw new LabError(`${opts.what ?? line}: no answer in ${Math.round((opts.timeoutMs ?? 60_000) / 1000)} s`);
  if (r.exitCode !== 0) {
    const said = String(r.stderr || r.stdout).trim().split('\n').filter(Boolean).slice(-2).join(' / ');
    throw new LabError(`${opts.what ?? line} failed (exit ${r.exitCode}): ${said || 'no message'}`);
  }
  return String(r.stdout);
}
