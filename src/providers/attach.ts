import { appendFileSync } from 'node:fs';
import net from 'node:net';
import type { Readable, Writable } from 'node:stream';
import { EnvironmentError, LabError } from '../errors.js';
import type { ConsoleAttach } from './types.js';

/** Ctrl-]: what telnet and virsh console detach with. */
export const DETACH = 0x1d;

export interface AttachIo {
  input: Readable & { isTTY?: boolean; setRawMode?: (on: boolean) => unknown };
  output: Writable;
  /** A line for the person (stderr): how to detach. */
  say: (line: string) => void;
}

export type Detached = 'detached' | 'input ended' | 'console closed';

/**
 * Attach a terminal (or a pipe) to a VM's serial console until Ctrl-], the
 * end of the input or the VM going away. On a terminal the keys go through
 * raw, so the guest's shell sees Ctrl-C and arrows; piped input is typed in
 * as it comes, and after its end what the guest answers is still shown until
 * it has been quiet for quietMs.
 */
export async function attachConsole(vm: string, how: ConsoleAttach, io: AttachIo, quietMs = 1500): Promise<Detached> {
  if ('command' in how) return attachCommand(vm, how, io);
  try {
    return await attachSocket(vm, how, io, quietMs);
  } finally {
    await how.release?.();
  }
}

async function attachSocket(vm: string, how: { socket: string; tee?: string }, io: AttachIo, quietMs: number): Promise<Detached> {
  const sock = net.connect(how.socket);
  await new Promise<void>((resolve, reject) => {
    sock.once('connect', resolve);
    sock.once('error', (e: NodeJS.ErrnoException) =>
      reject(
        e.code === 'ENOENT' || e.code === 'ECONNREFUSED'
          ? new EnvironmentError(`${vm}: its console socket does not answer (${e.code}): is the VM running?`, 'see `lab image list` or `lab env status`')
          : new EnvironmentError(`${vm}: cannot reach its console: ${e.message}`),
      ),
    );
  });
  const { input, output } = io;
  const raw = Boolean(input.isTTY && input.setRawMode);
  io.say(`${vm}: attached to its serial console; detach with Ctrl-]`);
  if (raw) input.setRawMode!(true);
  return new Promise<Detached>((resolve) => {
    let quiet: NodeJS.Timeout | undefined;
    let over = false;
    // Detaching destroys the socket, whose close then comes here again: the first reason is the one.
    const finish = (why: Detached) => {
      if (over) return;
      over = true;
      clearTimeout(quiet);
      input.off('data', onInput);
      input.off('end', onEnd);
      if (raw) input.setRawMode!(false);
      input.pause();
      sock.destroy();
      resolve(why);
    };
    const onInput = (d: Buffer) => {
      const at = d.indexOf(DETACH);
      if (at === -1) return void sock.write(d);
      if (at > 0) sock.write(d.subarray(0, at));
      finish('detached');
    };
    // Piped input is over: what it asked for is still being answered; shown until the console falls quiet.
    let ended = false;
    const settle = () => {
      clearTimeout(quiet);
      quiet = setTimeout(() => finish('input ended'), quietMs);
    };
    const onEnd = () => {
      ended = true;
      settle();
    };
    sock.on('data', (d: Buffer) => {
      output.write(d);
      if (how.tee) appendFileSync(how.tee, d);
      if (ended) settle();
    });
    sock.on('close', () => finish('console closed'));
    sock.on('error', () => finish('console closed'));
    input.on('data', onInput);
    input.on('end', onEnd);
    input.resume();
  });
}

/** A program that attaches the terminal itself (virsh console): lab hands it the terminal and waits. */
async function attachCommand(vm: string, how: { command: string[]; detachKey: string }, io: AttachIo): Promise<Detached> {
  const { execa } = await import('execa');
  io.say(`${vm}: attaching with ${how.command[0]}; detach with ${how.detachKey}`);
  const r = await execa(how.command[0]!, how.command.slice(1), { stdio: 'inherit', reject: false });
  if (r.exitCode !== 0) throw new LabError(`${vm}: ${how.command[0]} console failed (exit ${r.exitCode})`, { hint: 'lab console --follow prints it read-only' });
  return 'detached';
}
