import type { Command } from 'commander';
import type { Lab, LoadOptions } from '../config/load.js';
import type { Inventory } from '../inventory/store.js';
import { UsageError } from '../errors.js';

/** Hosts a service's operation runs on at once, unless --parallel says otherwise. */
export const DEFAULT_PARALLEL = 32;

/** The --lab folder of any command (a global option). */
export function labDir(cmd: Command): string {
  return (cmd.optsWithGlobals() as { lab?: string }).lab ?? '.';
}

// Imported here, not above: a command's module is loaded for `lab --help` and completion, which open no lab.
export async function openLab(cmd: Command, opts?: LoadOptions): Promise<{ lab: Lab; inventory: Inventory }> {
  const [{ loadLab }, { Inventory }] = await Promise.all([import('../config/load.js'), import('../inventory/store.js')]);
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
