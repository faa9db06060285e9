import { lastLines } from '../providers/console.js';
import { setTimeout as sleep } from 'node:timers/promises';
import { copyFileSync, mkdirSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { createHash } from 'node:crypto';
import { allHosts, declaredHost, type Lab, type DeclaredHost } from '../config/load.js';
import type { Inventory } from '../inventory/store.js';
import { machineRecord, type ImageRecord, type Lease } from '../inventory/types.js';
import { machineFor } from '../inventory/boots.js';
import { leasesFor } from '../kickstart/hosts.js';
import { closeWindow, openWindow } from '../inventory/windows.js';
import { hostContext, type Serving } from '../kickstart/context.js';
import { pxeTree } from '../kickstart/pxe.js';
import { ensureSecrets, hostToken } from '../project/secrets.js';
import type { Provider, VmInfo, VmSpec } from '../providers/types.js';
import { makeHostKeys } from './host-keys.js';
import { callbackAddress, callbackServer, type RunningServer } from '../server/serve.js';
import { EnvironmentError, LabError, UsageError } from '../errors.js';
import { parseCidr } from '../util/ipv4.js';
import type { BootFiles } from '../distros/types.js';
import { imageDistro } from '../distros/index.js';
import { requireSyslinux } from '../providers/syslinux.js';
import { freePort } from '../providers/ports.js';
import { Interrupted, runSteps, type Step, type StepEvents } from './steps.js';
import { waitUntil } from '../util/wait.js';
import { followConsole } from '../providers/follow.js';

export interface BuildOptions {
  rebuild?: boolean;
  events: StepEvents;
  signal?: AbortSignal;
  log?: (line: string) => void;
  /** With it, the VM's serial console line by line while it installs (--follow). */
  console?: (line: string) => void;
}

interface BuildState {
  lab: Lab;
  inventory: Inventory;
  provider: Provider;
  host: DeclaredHost;
  lease: Lease;
  started: string;
  files?: BootFiles;
  /** The server this build started (none while a lab serve runs). */
  server?: RunningServer;
  serving?: Serving;
  spec?: VmSpec;
  /** When the install called back (its %post). */
  calledBack?: string;
}

/** A tap name (at most 15 characters) that is stable for a VM. */
export function tapName(vm: string): string {
  return `lt${createHash('sha256').update(vm).digest('hex').slice(0, 10)}`;
}

/** The kernel's ip= argument (dracut's form) for a static lease; nothing with DHCP. */
export function ipArg(lab: Lab, host: string, lease: Lease): string {
  if (!lease.ip) return '';
  return ` ip=${lease.ip}::${lab.config.network.gateway}:${parseCidr(lab.config.network.cidr).netmask}:${host}:eth0:none`;
}

/** An image's installer kernel and initrd, as its distro makes them. */
export function bootFiles(lab: Lab, image: string, log: (line: string) => void): Promise<BootFiles> {
  return imageDistro(lab, image).bootFiles(lab.paths.dir, { name: image, iso: lab.config.images[image]!.iso }, log);
}

export async function vmSpecFor(lab: Lab, host: DeclaredHost, lease: Lease, files: BootFiles): Promise<VmSpec> {
  const image = lab.config.images[host.image]!;
  const distro = imageDistro(lab, host.image);
  return {
    name: host.name,
    cpus: image.cpus,
    memoryMiB: image.memory,
    diskMiB: image.disk,
    mac: lease.mac,
    network:
      lab.config.network.mode === 'user'
        ? { mode: 'user', sshPort: await freePort() }
        : { mode: 'bridge', bridge: lab.config.network.name, tap: tapName(host.name) },
    placement: { hypervisor: host.hypervisor, policy: host.placement ?? 'spread', group: `${host.env}/${host.role}` },
    // A system without a bootloader (the mini guest): its kernel boots the installed disk.
    diskBoot:
      distro.diskBootArgs
        ? {
            kernel: files.kernel,
            initrd: files.initrd,
            append: distro.diskBootArgs(host.name, ipArg(lab, host.name, lease)),
            // A clone starts with its image's callback token: it is given its own.
            secret: hostToken(ensureSecrets(lab.paths, lab.config.name).secret, host.name),
          }
        : undefined,
    hostKeys: distro.takesHostKeys ? await makeHostKeys() : undefined,
  };
}

/**
 * Where lab reaches a VM's SSH from this machine when that is a forwarded
 * port (user networking), kept on its host record for probes and SSH.
 */
export async function recordReach(inv: Inventory, host: DeclaredHost, vm: VmInfo): Promise<void> {
  await inv.update((d) => {
    const now = new Date().toISOString();
    const h = machineFor(d, host.name, now, host);
    if (vm.sshForward) h.reach = vm.sshForward;
    else delete h.reach;
    if (vm.hypervisor) h.hypervisor = vm.hypervisor;
    else delete h.hypervisor;
  });
}

async function setImage(inv: Inventory, name: string, change: Partial<ImageRecord> & Pick<ImageRecord, 'state'>): Promise<void> {
  await inv.update((d) => {
    const prev = d.images[name];
    d.images[name] = { ...(prev ?? { name, install: 'kernel', started: new Date().toISOString() }), ...change } as ImageRecord;
  });
}

/** The server the build started, if it did; once closed, closing again does nothing. */
async function closeServer(s: BuildState): Promise<void> {
  await s.server?.close();
}

function steps(opts: BuildOptions): Step<BuildState>[] {
  const log = opts.log ?? (() => undefined);
  return [
    {
      name: 'installer files',
      run: async (s) => {
        s.files = await bootFiles(s.lab, s.host.image, log);
      },
    },
    {
      name: 'server address',
      run: async (s) => {
        const secrets = ensureSecrets(s.lab.paths, s.lab.config.name);
        s.serving = { serverUrl: await callbackAddress(s.lab), secret: secrets.secret, publicKey: secrets.publicKey };
      },
    },
    {
      // The kickstart is served, and the installed system's host key pinned, only while lab expects this install.
      name: 'install window',
      run: async (s) => {
        const image = s.lab.config.images[s.host.image]!;
        await s.inventory.update((d) => openWindow(d, s.host.name, 'build', (image.installTimeout + 300) * 1000));
      },
      undo: async (s) => {
        await s.inventory.update((d) => closeWindow(d, s.host.name));
      },
    },
    {
      name: 'create VM',
      run: async (s) => {
        s.spec = await vmSpecFor(s.lab, s.host, s.lease, s.files!);
        await recordReach(s.inventory, s.host, await s.provider.create(s.spec));
      },
      undo: async (s) => {
        await s.provider.delete(s.host.name);
      },
    },
    {
      name: 'boot the installer',
      run: async (s, note) => {
        const image = s.lab.config.images[s.host.image]!;
        const ctx = hostContext(s.lab, s.host, s.lease, s.serving!);
        const cdrom = image.iso ? path.resolve(s.lab.paths.dir, image.iso) : undefined;
        await setImage(s.inventory, s.host.name, { state: 'installing', install: image.install, started: s.started, finished: undefined, reason: undefined });
        if (image.install === 'pxe') {
          if (s.lab.config.network.mode !== 'user') {
            throw new UsageError(`environments.ts: images.${s.host.image}.install: pxe needs network.mode 'user' (QEMU's built-in TFTP); use install: 'kernel' on a bridged lab`);
          }
          const root = s.lab.paths.tftp;
          const leases = await leasesFor(s.lab, s.inventory, allHosts(s.lab));
          for (const f of pxeTree(s.lab, leases, s.serving!)) {
            mkdirSync(path.dirname(path.join(root, f.path)), { recursive: true });
            writeFileSync(path.join(root, f.path), f.content);
          }
          mkdirSync(path.join(root, path.dirname(ctx.boot.kernel)), { recursive: true });
          copyFileSync(s.files!.kernel, path.join(root, ctx.boot.kernel));
          copyFileSync(s.files!.initrd, path.join(root, ctx.boot.initrd));
          for (const f of Object.values(requireSyslinux())) copyFileSync(f, path.join(root, path.basename(f)));
          note(`PXE from ${root}`);
          await s.provider.start(s.host.name, { boot: { kind: 'pxe', tftpRoot: root, bootfile: 'pxelinux.0' }, noReboot: true, cdrom });
        } else {
          await s.provider.start(s.host.name, {
            boot: { kind: 'kernel', kernel: s.files!.kernel, initrd: s.files!.initrd, append: `${ctx.boot.args}${ipArg(s.lab, s.host.name, s.lease)}` },
            noReboot: true,
            cdrom,
          });
        }
      },
    },
    {
      // After the boot: the server's start (40 ms) need not delay the guest's, which asks for its kickstart seconds later.
      name: 'server',
      run: async (s, note) => {
        const server = await callbackServer(s.lab, { log: (l) => log(`server: ${l}`) });
        s.server = server.started;
        note(server.started ? `started a server at ${server.url} for this build` : `using the server at ${server.url}`);
        // A lab serve started since the address was taken, elsewhere: the guest asks the address it was given.
        if (server.guestUrl !== s.serving!.serverUrl) throw new EnvironmentError(`the guest was given ${s.serving!.serverUrl} for its kickstart and callback, but the server now is at ${server.guestUrl}; build again`);
      },
      undo: closeServer,
    },
    {
      name: 'wait for the callback',
      run: async (s, note) => {
        const image = s.lab.config.images[s.host.image]!;
        const deadline = Date.parse(s.started) + image.installTimeout * 1000;
        let fetched = false;
        let seen = '';
        // The inventory's files are looked at every 20 ms and read when they changed (the callback is seen at once, a
        // large inventory is not parsed 50 times a second), the VM's state every 500 ms (a process for VBoxManage).
        for (let round = 0; ; round++) {
          if (opts.signal?.aborted) throw new Interrupted(String(opts.signal.reason ?? 'a signal'));
          const version = await s.inventory.version();
          if (version !== seen) {
            seen = version;
            const h = machineRecord(await s.inventory.read(), s.host.name);
            // Called back: the install is over, and its next boot must not be another install.
            if (h?.lastCallback && h.lastCallback >= s.started) return void (await endInstall(s, h.lastCallback));
            if (!fetched && h?.installStarted && h.installStarted >= s.started) {
              fetched = true;
              note('kickstart fetched: installing');
            }
          }
          const state = round % 25 === 0 ? (await s.provider.info(s.host.name)).state : undefined;
          if (state === 'stopped') {
            // The callback may have landed between the two reads: look once more.
            const again = machineRecord(await s.inventory.read(), s.host.name);
            if (again?.lastCallback && again.lastCallback >= s.started) return void (await endInstall(s, again.lastCallback));
            throw await failure(s, 'failed', 'the installer stopped before calling back');
          }
          if (Date.now() > deadline) {
            throw await failure(s, 'stalled', `no callback within ${image.installTimeout} s (installTimeout)`);
          }
          if (round % 50 === 0) note(`waiting for the callback (${Math.round((Date.now() - Date.parse(s.started)) / 1000)} s)`);
          await sleep(20);
        }
      },
    },
    {
      name: 'installer powers off',
      run: async (s) => {
        // The mini installer powers off; anaconda's reboot ends QEMU under -no-reboot. Where a
        // reboot boots the installed system instead (VirtualBox), it calls back once up: then
        // nothing will power it off but lab, gracefully.
        const end = await waitUntil(120_000, async () => {
          if ((await s.provider.info(s.host.name)).state === 'stopped') return 'off';
          const h = machineRecord(await s.inventory.read(), s.host.name);
          return h?.lastCallback && s.calledBack && h.lastCallback > s.calledBack ? 'booted' : undefined;
        }, { everyMs: 100, firstMs: 10 });
        if (end !== 'off') await s.provider.stop(s.host.name, 30_000);
        await setImage(s.inventory, s.host.name, { state: 'installed', finished: new Date().toISOString() });
      },
    },
  ];
}

/** The install called back: its next boot must not be another install (the provider sees to it where it must). */
async function endInstall(s: BuildState, at: string): Promise<void> {
  s.calledBack = at;
  await s.provider.installed?.(s.host.name);
}

/** Record why a build failed, keep the console, and say so with its last lines. */
async function failure(s: BuildState, state: 'failed' | 'stalled', why: string): Promise<LabError> {
  const tail = lastLines(await s.provider.console(s.host.name), 15);
  const logs = s.lab.paths.logs;
  mkdirSync(logs, { recursive: true });
  const saved = path.join(logs, `${s.host.name}-${s.started.replace(/[:.]/g, '-')}.console.log`);
  writeFileSync(saved, `${tail}\n`);
  await setImage(s.inventory, s.host.name, { state, reason: why, consoleLog: saved, finished: new Date().toISOString() });
  return new LabError(`${s.host.kind} ${s.host.name}: ${why}; console (last lines, kept in ${saved}):\n${tail.replace(/^/gm, '  | ')}`);
}

/**
 * Build an image: install its VM from the kickstart and wait for the callback.
 * An installed image is left alone unless rebuild; a VM left by an
 * interrupted build is deleted and the build starts over.
 */
export async function buildImage(lab: Lab, inventory: Inventory, provider: Provider, image: string, opts: BuildOptions): Promise<'built' | 'exists'> {
  if (!(image in lab.config.images)) {
    throw new UsageError(`no image "${image}" in environments.ts; images are: ${Object.keys(lab.config.images).join(', ')}`);
  }
  return installHost(lab, inventory, provider, declaredHost(lab, image), opts);
}

/**
 * Install one VM from its image's installer and kickstart: an image's own VM,
 * or an environment host that cannot be cloned (a CentOS host installs as
 * itself, so it has its own name and host key). Its install is tracked under
 * its name, as an image's is.
 */
export async function installHost(lab: Lab, inventory: Inventory, provider: Provider, host: DeclaredHost, opts: BuildOptions): Promise<'built' | 'exists'> {
  const name = host.name;
  const record = (await inventory.read()).images[name];
  const vm = await provider.info(name);
  if (!opts.rebuild && record?.state === 'installed' && vm.state !== 'missing') return 'exists';
  if (vm.state !== 'missing') {
    opts.log?.(`removing the VM ${name} left by ${record?.state === 'installed' ? 'the previous build' : 'an interrupted build'}`);
    await provider.delete(name);
  }
  const leases = await leasesFor(lab, inventory, [host]);
  const state: BuildState = { lab, inventory, provider, host, lease: leases.get(name)!, started: new Date().toISOString() };
  // The old VM and its console are gone by now: what the console shows from here is this install's.
  const follower = opts.console && followConsole(provider, name, opts.console);
  try {
    await runSteps(steps(opts), state, opts.events, opts.signal);
  } catch (e) {
    const rec = (await inventory.read()).images[name];
    if (rec?.state === 'installing') await setImage(inventory, name, { state: 'failed', reason: e instanceof Error ? e.message.split('\n')[0] : String(e), finished: new Date().toISOString() });
    throw e;
  } finally {
    await follower?.stop();
    await closeServer(state);
  }
  return 'built';
}
