import type { Command } from 'commander';
import { loadLab, type Lab, type LoadOptions } from '../config/load.js';
import { Inventory } from '../inventory/store.js';
import { UsageError } from '../errors.js';

/** The --lab folder of any command (a global option). */
export function labDir(cmd: Command): string {
  return (cmd.optsWithGlobals() as { lab?: string }).lab ?? '.';
}

export async function openLab(cmd: Command, opts?: LoadOptions): Promise<{ lab: Lab; inventory: Inventory }> {
  const lab = await loadLab(labDir(cmd), opts);
  return { lab, inventory: new Inventory(lab.paths) };
}

/** A whole number option such as --port, refused with the option's name when it is not one. */
export function intOption(name: string, min: number, max: number): (raw: string) => number {
  return (raw: string) => {
    const n = Number(raw);
    if (!/^\d+$/.test(raw.trim()) || n < min || n > max) throw new UsageError(`${name}: expected a whole number from ${min} to ${max}, got "${raw}"`);
    return n;
  };
}

/** A decimal number option such as --high, refused with the option's name when it is not one. */
export function numberOption(name: string, min: number, max: number): (raw: string) => number {
  return (raw: string) => {
    const n = Number(raw);
    if (!/^\d+(\.\d+)?$/.test(raw.trim()) || n < min || n > max) throw new UsageError(`${name}: expected a number from ${min} to ${max}, got "${raw}"`);
    return n;
  };
}
