import { existsSync, mkdirSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import path from 'node:path';
import { writeFileAtomicSync } from '../../util/files.js';
import type { VmSpec } from '../types.js';

/** What lab keeps of each VM it made through libvirt (inventory/vms/<name>/libvirt.json): where it is, and how to define it again. */
export interface VmRecord {
  spec: VmSpec;
  hypervisor: string;
  uuid: string;
  /** Its disk's volume in the hypervisor's pool. */
  disk: string;
  /** Bumped at each start: the disk may have changed, so a clone's base is taken again. */
  generation: number;
  /** The base volume its own disk is backed by (a clone's image), and lab's copy of it here. */
  base?: string;
  baseFile?: string;
  /** The guest's secrets as they were last put on a hypervisor (fwcfgFiles): which one, and each file's digest. */
  secrets?: { hypervisor: string; digests: Record<string, string> };
}

/** A VM lab removed while its hypervisor did not answer: removed there when it answers again, never left to run beside its replacement. */
export interface Removal {
  hypervisor: string;
  domain: string;
  volumes: string[];
}

/**
 * The libvirt provider's own files: a record per VM under inventory/vms/,
 * and under inventory/libvirt/ the removals owed, the drained hypervisors and
 * what was learnt of each (KVM or not). The hypervisors hold the domains;
 * these say which of them are lab's and where.
 */
export class LibvirtState {
  constructor(
    private readonly vmsDir: string,
    private readonly stateDir: string,
  ) {}

  /** A VM's folder on this machine (its record, lab's copy of an image's base). */
  dir(name: string): string {
    return path.join(this.vmsDir, name);
  }
  private recordFile(name: string): string {
    return path.join(this.dir(name), 'libvirt.json');
  }

  record(name: string): VmRecord | undefined {
    const f = this.recordFile(name);
    if (!existsSync(f)) return undefined;
    return JSON.parse(readFileSync(f, 'utf8')) as VmRecord;
  }

  save(name: string, r: VmRecord): void {
    mkdirSync(this.dir(name), { recursive: true });
    writeFileAtomicSync(this.recordFile(name), `${JSON.stringify(r, null, 2)}\n`);
  }

  forget(name: string): void {
    rmSync(this.dir(name), { recursive: true, force: true });
  }

  records(): VmRecord[] {
    if (!existsSync(this.vmsDir)) return [];
    return readdirSync(this.vmsDir)
      .sort()
      .map((n) => this.record(n))
      .filter((r): r is VmRecord => r !== undefined);
  }

  /** A private file of the provider's (a domain's XML holds the guest's token). */
  file(f: string): string {
    mkdirSync(this.stateDir, { recursive: true, mode: 0o700 });
    return path.join(this.stateDir, f);
  }
  private read<T>(f: string, empty: T): T {
    const p = path.join(this.stateDir, f);
    return existsSync(p) ? (JSON.parse(readFileSync(p, 'utf8')) as T) : empty;
  }
  private write(f: string, v: unknown): void {
    writeFileAtomicSync(this.file(f), `${JSON.stringify(v, null, 2)}\n`);
  }

  drained(): string[] {
    return this.read<string[]>('drained.json', []);
  }
  setDrained(hv: string, on: boolean): void {
    const set = new Set(this.drained());
    if (on) set.add(hv);
    else set.delete(hv);
    this.write('drained.json', [...set].sort());
  }

  removals(): Removal[] {
    return this.read<Removal[]>('removals.json', []);
  }
  setRemovals(r: Removal[]): void {
    this.write('removals.json', r);
  }

  /** What was learnt of each hypervisor, by URI. */
  facts(): Record<string, { kvm: boolean }> {
    return this.read<Record<string, { kvm: boolean }>>('facts.json', {});
  }
  setFacts(uri: string, f: { kvm: boolean }): void {
    this.write('facts.json', { ...this.facts(), [uri]: f });
  }
}
