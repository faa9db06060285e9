/**
 * VBoxManage's output formats, parsed into typed values. Formats as recorded
 * in test/fixtures/vboxmanage/ (sources cited there).
 */

export interface VBoxVersion {
  major: number;
  minor: number;
  patch: number;
  raw: string;
}

/** `VBoxManage --version`: "7.0.10r158379", "7.0.16_Ubuntur162802", "6.1.28r147628"; WARNING lines may come first. */
export function parseVersion(out: string): VBoxVersion | undefined {
  const line = out.split('\n').map((l) => l.trim()).find((l) => l && !l.startsWith('WARNING'));
  if (!line) return undefined;
  const m = /^(\d+)\.(\d+)\.(\d+)/.exec(line.split('_')[0]!.split('r')[0]!);
  if (!m) return undefined;
  return { major: Number(m[1]), minor: Number(m[2]), patch: Number(m[3]), raw: line };
}

/** `showvminfo --machinereadable`: key=value lines; keys may be quoted, values quoted or bare. */
export function parseMachineReadable(out: string): Map<string, string> {
  const map = new Map<string, string>();
  for (const line of out.split('\n')) {
    const m = /^("(?:[^"\\]|\\.)*"|[^=]+)=(.*)$/.exec(line.trim());
    if (!m) continue;
    const unquote = (s: string) => (s.length >= 2 && s.startsWith('"') && s.endsWith('"') ? s.slice(1, -1).replace(/\\(.)/g, '$1') : s);
    map.set(unquote(m[1]!), unquote(m[2]!));
  }
  return map;
}

/** `list vms` / `list runningvms`: "name" {uuid} per line; empty output: none. */
export function parseVmList(out: string): { name: string; uuid: string }[] {
  const vms: { name: string; uuid: string }[] = [];
  for (const line of out.split('\n')) {
    const m = /^"(.*)" \{([0-9a-f-]{36})\}$/.exec(line.trim());
    if (m) vms.push({ name: m[1]!, uuid: m[2]! });
  }
  return vms;
}

/** VirtualBox writes MACs as 12 hex digits without separators. */
export function macFromVBox(v: string): string {
  return v.toLowerCase().match(/../g)!.join(':');
}
export function macToVBox(mac: string): string {
  return mac.replace(/:/g, '').toUpperCase();
}

/** An error VBoxManage reported, even with exit code 0. */
export function vboxError(stderr: string): string | undefined {
  const lines = stderr.split('\n').filter((l) => /^VBoxManage(\.[a-z]+)?: error:/.test(l));
  return lines.length ? lines.map((l) => l.replace(/^VBoxManage(\.[a-z]+)?: error:\s*/, '')).join(' / ') : undefined;
}

/** Errors VirtualBox recovers from by itself: Packer and Vagrant retry these. */
export function isTransient(message: string): boolean {
  return /is already locked by a session|VBOX_E_INVALID_OBJECT_STATE/.test(message);
}

/** A host-only interface (`list hostonlyifs`): the host's side of a host-only network on Linux, and before 7.x everywhere. */
export interface HostOnlyIf {
  name: string;
  ip: string;
  netmask: string;
  status: string;
}

/** A host-only network (`list hostonlynets`, 7.x): what 7.x uses on macOS instead of interfaces. */
export interface HostOnlyNet {
  name: string;
  netmask: string;
  lowerIp: string;
  upperIp: string;
  state: string;
}

/** Blocks of "Key: value" lines separated by blank lines, keys lower-cased (list hostonlyifs, list hostonlynets). */
function blocks(out: string): Map<string, string>[] {
  const found: Map<string, string>[] = [];
  let current: Map<string, string> | undefined;
  for (const line of out.split('\n')) {
    const m = /^([A-Za-z][\w ]*?):\s*(.*)$/.exec(line.trim());
    if (!m) continue;
    const key = m[1]!.toLowerCase();
    // A block starts at its Name line (Vagrant reads them the same way).
    if (key === 'name') found.push((current = new Map()));
    current?.set(key, m[2]!.trim());
  }
  return found;
}

export function parseHostOnlyIfs(out: string): HostOnlyIf[] {
  return blocks(out).map((b) => ({ name: b.get('name')!, ip: b.get('ipaddress') ?? '', netmask: b.get('networkmask') ?? '', status: b.get('status') ?? '' }));
}

export function parseHostOnlyNets(out: string): HostOnlyNet[] {
  return blocks(out).map((b) => ({ name: b.get('name')!, netmask: b.get('networkmask') ?? '', lowerIp: b.get('lowerip') ?? '', upperIp: b.get('upperip') ?? '', state: b.get('state') ?? '' }));
}

/** `hostonlyif create`: "Interface 'vboxnet1' was successfully created". */
export function parseCreatedIf(out: string): string | undefined {
  return /Interface '([^']+)' was successfully created/.exec(out)?.[1];
}
