import { consoleText } from '../console.js';
import { closeSync, existsSync, openSync, readFileSync, readSync, renameSync, rmSync, statSync } from 'node:fs';
import { createHash, randomUUID } from 'node:crypto';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { LabError, ToolError, UsageError, messageOf } from '../../errors.js';
import { writeFileAtomicSync } from '../../util/files.js';
import { KeyedQueue } from '../../util/queue.js';
import { waitUntil } from '../../util/wait.js';
import { effectiveBoot } from '../boot.js';
import type { ConsoleAttach, Provider, StartOptions, VmInfo, VmSnapshots, VmSpec, VmState } from '../types.js';
import { domainXml, type Domain, type DomainDisk } from './domain.js';
import { place, type Room } from './placement.js';
import { HypervisorDown, Virsh } from './virsh.js';
import type { Hypervisor } from './hypervisors.js';
import { LibvirtState, type VmRecord } from './state.js';
import { connectUri, uriHost } from './uri.js';

const STATES: Record<string, VmState> = {
  running: 'running',
  'in shutdown': 'running',
  blocked: 'running',
  idle: 'running',
  paused: 'paused',
  pmsuspended: 'paused',
  'shut off': 'stopped',
  crashed: 'stopped',
  dying: 'stopped',
};

export interface LibvirtOptions {
  lab: string;
  hypervisors: Hypervisor[];
  /** inventory/vms: a folder per VM. */
  vmsDir: string;
  /** inventory/libvirt: removals pending, drained hypervisors, facts learned. */
  stateDir: string;
  /** An ssh wrapper with lab's options (timeouts, lab's known hosts), for qemu+ssh URIs that name no command of their own. */
  sshCommand?: string;
}

/** What a guest may be given in QEMU's fw_cfg (opt/lab/<entry>): its callback token (to boot its disk with), its SSH host keys. */
const SECRET_ENTRIES = ['token', 'host_keys'] as const;
function secretsFor(spec: VmSpec, diskBoot: boolean): Record<(typeof SECRET_ENTRIES)[number], string | undefined> {
  return { token: diskBoot ? spec.diskBoot?.secret : undefined, host_keys: spec.hostKeys };
}

/**
 * libvirt on one or more hypervisors, through virsh. Nothing assumes the
 * hypervisor sees this machine's files: images, installer kernels and ISOs
 * reach it as volumes of lab's pool there, each host's disk is a volume
 * backed by its image's base volume, and the console is a file in that pool
 * read back as a volume.
 */
export class LibvirtProvider implements Provider {
  readonly name = 'libvirt';
  private readonly sessions = new Map<string, Virsh>();
  private readonly pools = new Map<string, Promise<string>>();
  private readonly uploads = new KeyedQueue();
  /** Placement and the clone of one source run one at a time: each decision sees the last one's VM. */
  private readonly serial = new KeyedQueue();
  private readonly byName: Map<string, Hypervisor>;
  /** Removals done on the way (the first contact with a hypervisor owing them), for reconcile to report. */
  private readonly removed: string[] = [];
  /** Pairs of hypervisors (from>to) whose QEMUs could not connect for a migration, and why: each try costs TCP's full timeout (about 2 min). */
  private readonly noPath = new Map<string, string>();

  readonly state: LibvirtState;

  constructor(private readonly o: LibvirtOptions) {
    this.byName = new Map(o.hypervisors.map((h) => [h.name, h]));
    this.state = new LibvirtState(o.vmsDir, o.stateDir);
  }

  /** The hypervisors, as declared. */
  get hypervisors(): Hypervisor[] {
    return this.o.hypervisors;
  }

  session(hv: string): Virsh {
    let s = this.sessions.get(hv);
    if (!s) {
      const h = this.hv(hv);
      s = new Virsh({ name: h.name, uri: connectUri(h.uri, this.o.sshCommand), timeoutMs: 60_000 });
      this.sessions.set(hv, s);
    }
    return s;
  }

  close(): void {
    for (const s of this.sessions.values()) s.close();
  }

  private hv(name: string): Hypervisor {
    const h = this.byName.get(name);
    if (!h) throw new UsageError(`no hypervisor "${name}" in environments.ts; hypervisors are: ${[...this.byName.keys()].join(', ')}`);
    return h;
  }

  private domain(name: string): string {
    return `${this.o.lab}-${name}`;
  }

  /** A VM's state as its hypervisor says it (domstate); throws when the hypervisor or the domain is not there. */
  private async domState(rec: VmRecord): Promise<VmState> {
    return STATES[(await this.session(rec.hypervisor).call(['domstate', this.domain(rec.spec.name)])).trim()] ?? 'unknown';
  }

  private mustRecord(name: string): VmRecord {
    const r = this.state.record(name);
    if (!r) throw new UsageError(`no VM "${name}" (nothing at ${this.state.dir(name)})`, 'see `lab image list`, or `lab env status <env>`');
    return r;
  }

  /** Drain a hypervisor (placement skips it) or take it back. */
  setDrained(hv: string, on: boolean): void {
    this.hv(hv);
    this.state.setDrained(hv, on);
  }

  /** What each hypervisor has room for now (declared capacity minus lab's VMs there). */
  rooms(unavailable: Map<string, string> = new Map()): Room[] {
    const drained = new Set(this.state.drained());
    const recs = this.state.records();
    return this.o.hypervisors.map((h) => {
      const mine = recs.filter((r) => r.hypervisor === h.name);
      return {
        name: h.name,
        cpus: h.cpus,
        memoryMiB: h.memory,
        usedCpus: mine.reduce((n, r) => n + r.spec.cpus, 0),
        usedMemoryMiB: mine.reduce((n, r) => n + r.spec.memoryMiB, 0),
        unavailable: drained.has(h.name) ? 'is drained (lab hypervisor undrain)' : unavailable.get(h.name),
        groups: mine.reduce<Record<string, number>>((g, r) => {
          const k = r.spec.placement?.group;
          if (k) g[k] = (g[k] ?? 0) + 1;
          return g;
        }, {}),
      };
    });
  }

  /** A hypervisor answers: its pool is there (made if missing), and the removals it owes are done. */
  private async reachable(hv: string): Promise<string | undefined> {
    try {
      await this.poolPath(hv);
      return undefined;
    } catch (e) {
      if (e instanceof HypervisorDown) return `does not answer (${e.reason})`;
      throw e;
    }
  }

  /** Why each of these hypervisors takes nothing now (it does not answer), asked side by side. */
  private async downOf(names: string[]): Promise<Map<string, string>> {
    const down = new Map<string, string>();
    await Promise.all(
      names.map(async (hv) => {
        const why = await this.reachable(hv);
        if (why) down.set(hv, why);
      }),
    );
    return down;
  }

  /**
   * A new VM: a hypervisor chosen and the VM recorded there at once (so the
   * next choice counts it), then made by body; its record is dropped if that fails.
   */
  private async newVm(spec: VmSpec, body: (rec: VmRecord) => Promise<void>): Promise<VmInfo> {
    await this.mustBeFree(spec.name);
    const rec = await this.serial.run('placement', async () => {
      const down = await this.downOf(spec.placement?.hypervisor ? [spec.placement.hypervisor] : this.o.hypervisors.map((h) => h.name));
      const hv = place(this.rooms(down), {
        vm: spec.name,
        cpus: spec.cpus,
        memoryMiB: spec.memoryMiB,
        hypervisor: spec.placement?.hypervisor,
        placement: spec.placement?.policy ?? 'spread',
        group: spec.placement?.group,
      });
      const made: VmRecord = { spec, hypervisor: hv, uuid: randomUUID(), disk: `${this.o.lab}-${spec.name}.qcow2`, generation: 0 };
      this.state.save(spec.name, made);
      return made;
    });
    try {
      await body(rec);
    } catch (e) {
      this.state.forget(spec.name);
      throw e;
    }
    return this.info(spec.name);
  }

  /** The pool's folder on the hypervisor; the pool is defined, built and started when missing. */
  poolPath(hv: string): Promise<string> {
    let p = this.pools.get(hv);
    if (!p) {
      p = this.ensurePool(hv);
      this.pools.set(hv, p);
      p.catch(() => this.pools.delete(hv));
    }
    return p;
  }

  private async ensurePool(hv: string): Promise<string> {
    const v = this.session(hv);
    const pool = this.hv(hv).pool;
    let info = await v.tryCall(['pool-info', pool]);
    if (info === undefined) {
      await v.call(['pool-define-as', pool, 'dir', '--target', `/var/lib/libvirt/images/${pool}`]);
      await v.call(['pool-build', pool]);
      await v.call(['pool-autostart', pool]);
      info = await v.call(['pool-info', pool]);
    }
    if (!/^State:\s+running/m.test(info)) await v.call(['pool-start', pool]);
    const xml = await v.call(['pool-dumpxml', pool]);
    const m = /<path>([^<]+)<\/path>/.exec(xml);
    if (!m) throw new LabError(`hypervisor ${hv}: pool ${pool} has no target path`);
    this.removed.push(...(await this.doRemovals(hv)));
    return m[1]!;
  }

  /** Removals owed to a hypervisor that answers again. */
  private async doRemovals(hv: string): Promise<string[]> {
    const owed = this.state.removals().filter((r) => r.hypervisor === hv);
    if (owed.length === 0) return [];
    for (const r of owed) await this.purge(hv, r.domain, r.volumes);
    const left = this.state.removals().filter((r) => !(r.hypervisor === hv && owed.some((o) => o.domain === r.domain)));
    this.state.setRemovals(left);
    return owed.map((r) => `${hv}: removed ${r.domain}, replaced elsewhere while ${hv} did not answer`);
  }

  /**
   * Every hypervisor owing removals is tried (the monitor calls this each
   * cycle): a VM lab replaced elsewhere never runs twice under one name.
   */
  async reconcile(): Promise<string[]> {
    const hvs = [...new Set(this.state.removals().map((r) => r.hypervisor))].filter((h) => this.byName.has(h));
    for (const hv of hvs) {
      try {
        await this.poolPath(hv);
        this.removed.push(...(await this.doRemovals(hv)));
      } catch (e) {
        if (!(e instanceof HypervisorDown)) throw e;
      }
    }
    return this.removed.splice(0);
  }

  private async volPath(hv: string, vol: string): Promise<string> {
    return `${await this.poolPath(hv)}/${vol}`;
  }

  /**
   * A file of this machine as a volume of the hypervisor's pool, uploaded once:
   * named by its content, so a changed kernel is a new volume.
   */
  private async upload(hv: string, file: string, prefix: string): Promise<string> {
    const vol = `${prefix}-${fileDigest(file)}${path.extname(file) === '.iso' ? '.iso' : ''}`;
    return this.uploads.run(`${hv}/${vol}`, async () => {
      const v = this.session(hv);
      const pool = this.hv(hv).pool;
      await this.poolPath(hv);
      if ((await v.tryCall(['vol-info', '--pool', pool, vol])) === undefined) {
        try {
          await this.putFile(hv, vol, file);
        } catch (e) {
          await v.tryCall(['vol-delete', '--pool', pool, vol]);
          throw e;
        }
      }
      return this.volPath(hv, vol);
    });
  }

  /** Whether lab runs its guests there under KVM: as declared, or (accel auto) as last seen offered. */
  private async kvm(hv: string): Promise<boolean> {
    const h = this.hv(hv);
    if (h.accel !== 'auto') return h.accel === 'kvm';
    return this.state.facts()[h.uri]?.kvm ?? (await this.offersKvm(hv));
  }

  /** The hypervisor offers KVM (domcapabilities), asked now and kept for later defines. */
  async offersKvm(hv: string): Promise<boolean> {
    const kvm = (await this.session(hv).tryCall(['domcapabilities', '--virttype', 'kvm'])) !== undefined;
    this.state.setFacts(this.hv(hv).uri, { kvm });
    return kvm;
  }

  private async define(rec: VmRecord, opts: StartOptions): Promise<void> {
    const { spec, hypervisor: hv } = rec;
    const boot = effectiveBoot(spec, opts.boot);
    if (boot.kind === 'pxe') {
      throw new UsageError(`${spec.name}: provider libvirt boots installers by their kernel (images.<name>.install: 'kernel'); PXE needs a TFTP server on the hypervisors' segment`);
    }
    const disks: DomainDisk[] = [{ path: await this.volPath(hv, rec.disk), format: 'qcow2', device: 'disk' }];
    if (opts.cdrom) disks.push({ path: await this.upload(hv, opts.cdrom, `${this.o.lab}-iso`), format: 'raw', device: 'cdrom' });
    const kernel =
      boot.kind === 'kernel'
        ? {
            kernel: await this.upload(hv, boot.kernel, 'lab-kernel'),
            initrd: await this.upload(hv, boot.initrd, 'lab-initrd'),
            cmdline: boot.append,
          }
        : undefined;
    const fwcfg = await this.fwcfgFiles(rec, hv, secretsFor(spec, opts.boot.kind === 'disk'));
    const d: Domain = {
      name: this.domain(spec.name),
      uuid: rec.uuid,
      type: (await this.kvm(hv)) ? 'kvm' : 'qemu',
      memoryMiB: spec.memoryMiB,
      cpus: spec.cpus,
      kernel,
      onReboot: opts.noReboot ? 'destroy' : 'restart',
      disks,
      nic: { bridge: this.hv(hv).bridge, mac: spec.mac },
      console: await this.volPath(hv, this.consoleVol(spec.name)),
      fwcfg,
      lab: this.o.lab,
    };
    await this.defineXml(hv, d);
  }

  /**
   * The guest's secrets (its callback token, its SSH host keys) for QEMU's
   * fw_cfg, as files on the hypervisor: volumes of lab's pool (0600; libvirt
   * gives them to the QEMU it runs, as it does the disks), one per entry,
   * named by VM and entry (secretVols). Given in the XML instead, libvirt
   * puts them on QEMU's command line (`-fw_cfg name=...,string=...`), which
   * every user of the hypervisor reads with ps. Put there again only when
   * changed or on another hypervisor (the record keeps their digests).
   */
  private async fwcfgFiles(rec: VmRecord, hv: string, entries: Record<string, string | undefined>): Promise<Record<string, string> | undefined> {
    const given = Object.entries(entries).filter((e): e is [string, string] => e[1] !== undefined);
    if (given.length === 0) return undefined;
    const known = rec.secrets?.hypervisor === hv ? rec.secrets.digests : {};
    const digests: Record<string, string> = {};
    const files: Record<string, string> = {};
    for (const [entry, content] of given) {
      const vol = this.secretVol(rec.spec.name, entry);
      digests[entry] = createHash('sha256').update(content).digest('hex');
      if (known[entry] !== digests[entry]) await this.putSecret(hv, rec.spec.name, vol, content);
      files[`opt/lab/${entry}`] = await this.volPath(hv, vol);
    }
    rec.secrets = { hypervisor: hv, digests: { ...known, ...digests } };
    this.state.save(rec.spec.name, rec);
    return files;
  }

  /** The secrets the VM's domain was last given (fwcfgFiles), with what they hold. */
  private secretsOf(rec: VmRecord): Record<string, string | undefined> {
    const had = rec.secrets?.digests ?? {};
    return Object.fromEntries(Object.entries(secretsFor(rec.spec, true)).filter(([entry]) => entry in had));
  }

  /** The volumes that hold a VM's secrets (fwcfgFiles), present or not. */
  private secretVols(name: string): string[] {
    return SECRET_ENTRIES.map((e) => this.secretVol(name, e));
  }

  private secretVol(name: string, entry: string): string {
    return `${this.domain(name)}.${entry.replace('_', '-')}`;
  }

  /** A secret as a volume, through a private file here (removed after). */
  private async putSecret(hv: string, name: string, vol: string, content: string): Promise<void> {
    const f = path.join(this.state.dir(name), `${vol}.upload`);
    writeFileAtomicSync(f, content, 0o600);
    try {
      await this.session(hv).tryCall(['vol-delete', '--pool', this.hv(hv).pool, vol]);
      await this.putFile(hv, vol, f);
    } finally {
      rmSync(f, { force: true });
    }
  }

  private async defineXml(hv: string, d: Domain): Promise<void> {
    // The XML names the guest's secrets' files only; kept private all the same, and removed once virsh has read it.
    const f = this.state.file(`${d.name}.xml`);
    writeFileAtomicSync(f, domainXml(d), 0o600);
    try {
      await this.session(hv).call(['define', f]);
    } finally {
      rmSync(f, { force: true });
    }
  }

  private consoleVol(name: string): string {
    return `${this.o.lab}-${name}.console`;
  }

  /** The VM's disk volume made anew on a hypervisor: blank, or an overlay on a base volume (a linked clone). */
  private async newDisk(hv: string, rec: VmRecord, base?: string): Promise<void> {
    const v = this.session(hv);
    const pool = this.hv(hv).pool;
    await this.poolPath(hv);
    await v.tryCall(['vol-delete', '--pool', pool, rec.disk]);
    await v.call(['vol-create-as', pool, rec.disk, `${rec.spec.diskMiB}M`, '--format', 'qcow2', ...(base ? ['--backing-vol', base, '--backing-vol-format', 'qcow2'] : [])]);
  }

  /** A file of this machine into a new raw volume of its exact size (a rounded one pads the file with zeros). */
  private async putFile(hv: string, vol: string, file: string): Promise<void> {
    const v = this.session(hv);
    const pool = this.hv(hv).pool;
    await v.call(['vol-create-as', pool, vol, `${statSync(file).size}b`, '--format', 'raw']);
    await v.call(['vol-upload', '--pool', pool, vol, file], { timeoutMs: 30 * 60_000 });
  }

  create(spec: VmSpec): Promise<VmInfo> {
    return this.newVm(spec, async (rec) => {
      await this.newDisk(rec.hypervisor, rec);
      await this.define(rec, { boot: { kind: 'disk' } });
    });
  }

  /** No VM of that name: a record whose domain its hypervisor no longer has (undefined by hand) is dropped. */
  private async mustBeFree(name: string): Promise<void> {
    if (!this.state.record(name)) return;
    if ((await this.info(name)).state === 'missing') {
      this.state.forget(name);
      return;
    }
    throw new UsageError(`VM "${name}" exists already`, `delete it first with \`lab image del ${name}\`, or use another name`);
  }

  async start(name: string, opts: StartOptions): Promise<void> {
    const rec = this.mustRecord(name);
    const v = this.session(rec.hypervisor);
    const state = await this.domState(rec);
    if (state === 'running' || state === 'paused') throw new LabError(`VM "${name}" is running already`);
    await this.define(rec, opts);
    this.state.save(name, { ...rec, generation: rec.generation + 1 });
    await v.call(['start', this.domain(name)]);
  }

  async stop(name: string, deadlineMs: number): Promise<'graceful' | 'forced' | 'already'> {
    const rec = this.mustRecord(name);
    const v = this.session(rec.hypervisor);
    const dom = this.domain(name);
    const state = () => this.domState(rec);
    if ((await state()) === 'stopped') return 'already';
    if (deadlineMs > 0) {
      await v.tryCall(['shutdown', dom]);
      if (await waitUntil(deadlineMs, async () => ((await state()) === 'stopped' ? true : undefined), { everyMs: 500 })) return 'graceful';
    }
    await v.tryCall(['destroy', dom]);
    await waitUntil(5000, async () => ((await state()) === 'stopped' ? true : undefined), { everyMs: 200 });
    return 'forced';
  }

  async delete(name: string): Promise<void> {
    const rec = this.state.record(name);
    if (!rec) return this.deleteStray(name);
    const vols = [rec.disk, this.consoleVol(name), ...this.secretVols(name)];
    try {
      await this.removeOn(rec.hypervisor, this.domain(name), vols);
    } catch (e) {
      if (!(e instanceof HypervisorDown)) throw e;
      // Gone with its hypervisor: forgotten here, removed there when it answers again (reconcile).
      this.state.setRemovals([...this.state.removals(), { hypervisor: rec.hypervisor, domain: this.domain(name), volumes: vols }]);
    }
    this.state.forget(name);
  }

  private async removeOn(hv: string, dom: string, vols: string[]): Promise<void> {
    await this.poolPath(hv);
    await this.purge(hv, dom, vols);
  }

  /** A domain and its volumes gone from a hypervisor, whatever of them is there (no pool lookup: removals run inside it). */
  private async purge(hv: string, dom: string, vols: string[]): Promise<void> {
    const v = this.session(hv);
    const pool = this.hv(hv).pool;
    await v.tryCall(['destroy', dom]);
    // Its snapshots' metadata with it: libvirt refuses to undefine a domain that has snapshots otherwise (their data is in the volume, deleted next).
    await v.tryCall(['undefine', '--snapshots-metadata', dom]);
    await v.tryCall(['pool-refresh', pool]);
    for (const vol of vols) await v.tryCall(['vol-delete', '--pool', pool, vol]);
  }

  private async deleteStray(name: string): Promise<void> {
    const dom = this.domain(name);
    for (const h of this.o.hypervisors) {
      if ((await this.domainsOn(h.name)).includes(dom)) await this.removeOn(h.name, dom, [`${dom}.qcow2`, `${dom}.console`, ...this.secretVols(name)]);
    }
  }

  /** Every domain a hypervisor defines, by name; none when it does not answer. */
  private async domainsOn(hv: string): Promise<string[]> {
    const names = await this.session(hv).tryCall(['list', '--all', '--name']).catch(() => undefined);
    return (names ?? '').split('\n').map((n) => n.trim()).filter(Boolean);
  }

  /**
   * Move a running VM to another hypervisor without stopping it: libvirt's
   * live migration, its disk's top layer copied (--copy-storage-inc) onto an
   * overlay made beforehand on the same base there. The guest keeps its
   * address, host key and service; the balancer has nothing to learn.
   * Throws where the two ends do not allow it (the caller recreates instead).
   */
  async migrate(name: string): Promise<string> {
    const rec = this.mustRecord(name);
    const src = this.session(rec.hypervisor);
    const dom = this.domain(name);
    const running = (await this.domState(rec)) !== 'stopped';
    const target = await this.serial.run('placement', async () => {
      const down = await this.downOf(this.o.hypervisors.map((h) => h.name).filter((h) => h !== rec.hypervisor));
      down.set(rec.hypervisor, 'is the one being left');
      return place(this.rooms(down), { vm: name, cpus: rec.spec.cpus, memoryMiB: rec.spec.memoryMiB, placement: rec.spec.placement?.policy ?? 'spread', group: rec.spec.placement?.group });
    });
    // A clone's disk names its base by path: the same path must hold it there.
    if ((await this.poolPath(target)) !== (await this.poolPath(rec.hypervisor))) {
      throw new LabError(`${name}: lab's pool is at another path on ${target} than on ${rec.hypervisor}: its disk's backing file would not be found`);
    }
    if (rec.base) {
      if (!rec.baseFile || !existsSync(rec.baseFile)) throw new LabError(`${name}: lab's copy of its base volume ${rec.base} is gone: it cannot be put on ${target}`);
      await this.upload(target, rec.baseFile, rec.base.replace(/-[0-9a-f]{16}$/, ''));
    }
    const t = this.session(target);
    const pool = this.hv(target).pool;
    await t.tryCall(['vol-delete', '--pool', pool, rec.disk]);
    try {
      // The QEMU started there for a live migration opens the same fw_cfg files: they must be there first.
      if (running) await this.fwcfgFiles(rec, target, this.secretsOf(rec));
      if (running) await this.migrateLive(rec, target);
      else await this.copyDisk(rec, target);
    } catch (e) {
      for (const vol of [rec.disk, ...this.secretVols(name)]) await t.tryCall(['vol-delete', '--pool', pool, vol]);
      throw e;
    }
    const moved = { ...rec, hypervisor: target };
    this.state.save(name, moved);
    if (!running) await this.define(moved, { boot: { kind: 'disk' } });
    const from = this.hv(rec.hypervisor).pool;
    if (!running) await src.tryCall(['undefine', dom]);
    // Migration copies from the source's volumes and leaves them: removed, as the domain was.
    await src.tryCall(['vol-delete', '--pool', from, rec.disk]);
    for (const vol of [this.consoleVol(name), ...this.secretVols(name)]) await src.tryCall(['vol-delete', '--pool', from, vol]);
    return target;
  }

  /** libvirt's live migration, the disk's top layer copied onto an overlay made there on the same base. */
  private async migrateLive(rec: VmRecord, target: string): Promise<void> {
    if (!rec.base) throw new LabError(`${rec.spec.name}: not a linked clone: live migration copies only a clone's own layer`);
    const pair = `${rec.hypervisor}>${target}`;
    const known = this.noPath.get(pair);
    if (known) throw new LabError(known);
    await this.newDisk(target, rec, await this.volPath(target, rec.base));
    const host = uriHost(this.hv(target).uri);
    await this.session(rec.hypervisor).call(
      [
        'migrate',
        '--live',
        '--persistent',
        '--undefinesource',
        '--copy-storage-inc',
        // Where the source's QEMU sends memory and disk: the target's address, not the name it gives itself.
        ...(host ? ['--migrateuri', `tcp://${host}`, '--disks-uri', `tcp://${host}`] : []),
        this.domain(rec.spec.name),
        connectUri(this.hv(target).uri, this.o.sshCommand),
      ],
      { timeoutMs: 10 * 60_000 },
    ).catch((e: unknown) => {
      const unreached = migrationPathFailure(messageOf(e), rec.hypervisor, target);
      if (!unreached) throw e;
      this.noPath.set(pair, unreached);
      throw new LabError(unreached);
    });
  }

  /** A stopped VM's disk, through this machine, to the same volume name there. */
  private async copyDisk(rec: VmRecord, target: string): Promise<void> {
    const tmp = path.join(this.state.dir(rec.spec.name), 'moving.qcow2');
    try {
      await this.session(rec.hypervisor).call(['vol-download', '--pool', this.hv(rec.hypervisor).pool, rec.disk, tmp], { timeoutMs: 30 * 60_000 });
      await this.putFile(target, rec.disk, tmp);
    } finally {
      rmSync(tmp, { force: true });
    }
  }

  /**
   * A linked clone, on the hypervisor placement picks: the source's disk as
   * it is now becomes a base volume (copied to this machine once per
   * generation, and to each hypervisor that needs it), and the clone's disk
   * a volume backed by it. The source keeps its own disk.
   */
  async clone(source: string, spec: VmSpec): Promise<VmInfo> {
    const src = this.mustRecord(source);
    const baseFile = await this.serial.run(`base:${source}`, () => this.localBase(src));
    return this.newVm(spec, async (rec) => {
      const hv = rec.hypervisor;
      const base = await this.upload(hv, baseFile, `${this.o.lab}-${source}-base`);
      await this.newDisk(hv, rec, base);
      rec.base = path.basename(base);
      rec.baseFile = baseFile;
      this.state.save(spec.name, rec);
      await this.define(rec, { boot: { kind: 'disk' } });
    });
  }

  /**
   * The source's disk as a file on this machine, taken once per generation:
   * every hypervisor gets its base from here, so clones are made even while
   * the image's own hypervisor is away.
   */
  private async localBase(src: VmRecord): Promise<string> {
    const dir = this.state.dir(src.spec.name);
    const file = path.join(dir, `base-${src.generation}.qcow2`);
    if (existsSync(file)) return file;
    const v = this.session(src.hypervisor);
    if ((await this.domState(src)) !== 'stopped') throw new LabError(`VM "${src.spec.name}" is running; stop it before cloning`);
    const part = `${file}.part`;
    await v.call(['vol-download', '--pool', this.hv(src.hypervisor).pool, src.disk, part], { timeoutMs: 30 * 60_000 });
    // Older generations stay: clones made from them are migrated onto them.
    renameSync(part, file);
    return file;
  }

  /**
   * libvirt's internal snapshots (QEMU's savevm under it, into the qcow2
   * volume on the VM's hypervisor): with memory when the domain runs or is
   * paused, its disk alone when shut off. A revert with memory comes back
   * paused (--paused), for the environment to resume together.
   */
  readonly snapshots: VmSnapshots = {
    pause: async (name) => void (await this.call(name, ['suspend'])),
    resume: async (name) => void (await this.call(name, ['resume'])),
    take: async (name, tag) => {
      const state = await this.domState(this.mustRecord(name));
      await this.call(name, ['snapshot-create-as', '--atomic'], [tag], 600_000);
      return { memory: state === 'running' || state === 'paused' };
    },
    restore: async (name, tag, memory) => {
      // An inactive snapshot is reverted with the domain shut off: libvirt would otherwise need --force.
      if (!memory) await this.stop(name, 0);
      await this.call(name, ['snapshot-revert', ...(memory ? ['--paused'] : [])], ['--snapshotname', tag], 600_000);
    },
    remove: async (name, tag) => {
      if ((await this.snapshots.list(name)).includes(tag)) await this.call(name, ['snapshot-delete'], ['--snapshotname', tag], 600_000);
    },
    list: async (name) => (await this.call(name, ['snapshot-list', '--name'])).split('\n').map((l) => l.trim()).filter(Boolean),
  };

  /** virsh <command> [flags] <the VM's domain> [after] on the VM's hypervisor. */
  private call(name: string, command: string[], after: string[] = [], timeoutMs?: number): Promise<string> {
    const rec = this.mustRecord(name);
    return this.session(rec.hypervisor).call([...command, this.domain(name), ...after], timeoutMs ? { timeoutMs } : undefined);
  }

  async info(name: string): Promise<VmInfo> {
    const rec = this.state.record(name);
    if (!rec) return { name, state: 'missing', macs: [] };
    const base = { name, macs: [rec.spec.mac], hypervisor: rec.hypervisor };
    try {
      return { ...base, state: await this.domState(rec) };
    } catch (e) {
      if (e instanceof HypervisorDown) return { ...base, state: 'unreachable' };
      // Undefined by hand: lab's record is all that is left of it.
      if (e instanceof ToolError && /failed to get domain|Domain not found/i.test(e.message)) return { ...base, state: 'missing' };
      if (e instanceof ToolError) return { ...base, state: 'unknown' };
      throw e;
    }
  }

  async list(): Promise<VmInfo[]> {
    return Promise.all(this.state.records().map((r) => this.info(r.spec.name)));
  }

  /** virsh console, which needs a terminal: on the VM's hypervisor, through the lab's own ssh for qemu+ssh. */
  async consoleAttach(name: string): Promise<ConsoleAttach> {
    const rec = this.mustRecord(name);
    return { command: ['virsh', '-c', connectUri(this.hv(rec.hypervisor).uri, this.o.sshCommand), 'console', '--force', this.domain(name)], detachKey: 'Ctrl-]' };
  }

  async console(name: string): Promise<string> {
    const rec = this.state.record(name);
    if (!rec) return '';
    const v = this.session(rec.hypervisor);
    const pool = this.hv(rec.hypervisor).pool;
    const tmp = path.join(tmpdir(), `lab-console-${process.pid}-${name}`);
    try {
      await v.tryCall(['pool-refresh', pool]);
      if ((await v.tryCall(['vol-download', '--pool', pool, this.consoleVol(name), tmp])) === undefined) return '';
      return consoleText(readFileSync(tmp, 'utf8'));
    } catch (e) {
      if (e instanceof HypervisorDown) return '';
      throw e;
    } finally {
      rmSync(tmp, { force: true });
    }
  }

  async strays(): Promise<string[]> {
    const known = new Set(this.state.records().map((r) => this.domain(r.spec.name)));
    const owed = new Set(this.state.removals().map((r) => r.domain));
    const out = new Set<string>();
    await Promise.all(
      this.o.hypervisors.map(async (h) => {
        for (const n of await this.domainsOn(h.name)) {
          if (n.startsWith(`${this.o.lab}-`) && !known.has(n) && !owed.has(n)) out.add(n.slice(this.o.lab.length + 1));
        }
      }),
    );
    return [...out].sort();
  }
}

/** A file's content digest, remembered by path, size and time (an ISO is hashed once, not at every start). */
const digests = new Map<string, string>();
function fileDigest(file: string): string {
  const st = statSync(file);
  const key = `${file}:${st.size}:${st.mtimeMs}`;
  let d = digests.get(key);
  if (!d) {
    const h = createHash('sha256');
    const buf = Buffer.alloc(1 << 20);
    const fd = openSync(file, 'r');
    try {
      for (let n; (n = readSync(fd, buf, 0, buf.length, null)) > 0; ) h.update(buf.subarray(0, n));
    } finally {
      closeSync(fd);
    }
    d = h.digest('hex').slice(0, 16);
    digests.set(key, d);
  }
  return d;
}

/**
 * A migration whose QEMUs could not connect (memory or disk stream, source
 * to target): said as the path that is missing and the usual fix, since
 * virsh's own words name a QEMU command and a port.
 */
export function migrationPathFailure(message: string, from: string, to: string): string | undefined {
  const m = /Failed to connect to '?([^':\s]+):(\d+)'?: (Connection timed out|No route to host|Connection refused|Network is unreachable)/.exec(message) ?? /unable to connect to server at '([^':\s]+):(\d+)': (Connection timed out|No route to host|Connection refused|Network is unreachable)/.exec(message);
  if (!m) return undefined;
  return `live migration ${from} -> ${to}: ${from} cannot reach ${m[1]}:${m[2]} (${m[3]}); libvirt's migration ports (49152-49215/tcp) on ${to} must be open to ${from}`;
}
