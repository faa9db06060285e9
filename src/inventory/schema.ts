import * as z from 'zod/mini';
import '../util/zod-locale.js';
import { LabError, ExitCode } from '../errors.js';
import { fieldPath, issueText } from '../util/issues.js';
import { isIp, parseHostKey, parseHostName, parseMac } from './values.js';
import { keyed, type InventoryData } from './types.js';

/**
 * The inventory file as lab trusts it. db.json is lab's own, but it is a
 * file people edit, restore and copy: what is read from it is checked as
 * strictly as what comes over HTTP, since its values end up in ssh_config,
 * known_hosts and Ansible's inventory. A file that does not pass is refused
 * (and never rewritten), naming the field.
 */

// zod/mini, not zod: every command reads the inventory, and classic zod's
// module alone took about 30 ms of each start; mini is the same checks as
// functions, so the bundle keeps only those used.

const text = z.string().check(z.regex(/^[^\x00-\x1f\x7f]*$/, { error: 'expected text without control characters' }));
const time = text;
const hostName = z.string().check(z.refine((s) => parseHostName(s) === s, { error: 'expected a lower-case host name' }));
const mac = z.string().check(z.refine((s) => parseMac(s) === s, { error: 'expected a MAC address such as 52:54:00:12:34:56' }));
const ip = z.string().check(z.refine(isIp, { error: 'expected an IPv4 or IPv6 address' }));
const hostKey = z.string().check(z.refine((s) => parseHostKey(s) === s, { error: 'expected an SSH public key such as "ssh-ed25519 AAAA..."' }));
const count = z.int().check(z.minimum(0));
const keys = z.optional(z.array(hostKey).check(z.maxLength(6)));
const opt = z.optional;

const host = z.looseObject({
  name: hostName,
  env: opt(text),
  role: opt(text),
  image: opt(text),
  mac: opt(mac),
  ip: opt(ip),
  hostKey: opt(hostKey),
  otherKeys: keys,
  state: z.enum(['installing', 'up', 'down', 'stalled']),
  firstSeen: time,
  lastSeen: time,
  lastCallback: opt(time),
  installStarted: opt(time),
  stages: opt(z.looseObject({ started: opt(time), installed: opt(time), up: opt(time) })),
  lastProbe: opt(time),
  bootCount: count,
  reach: opt(z.looseObject({ address: ip, port: z.int().check(z.minimum(1), z.maximum(65535)) })),
  hypervisor: opt(z.string().check(z.maxLength(64))),
  serviceVersion: opt(text),
  refusedKey: opt(z.looseObject({ key: hostKey, otherKeys: keys, time, from: text })),
});

const schema = z.looseObject({
  version: z.literal([1, 2], { error: 'expected 1 or 2: this lab does not know this inventory version' }),
  hosts: z.record(hostName, host),
  imageVms: opt(z.record(hostName, host)),
  leases: z.record(hostName, z.looseObject({ ip: opt(ip), mac })),
  images: z.record(z.string(), z.looseObject({ name: text, state: z.enum(['installing', 'installed', 'stalled', 'failed']) })),
  events: z.array(z.looseObject({ time, host: text })),
  monitors: opt(z.record(z.string(), z.looseObject({ members: z.array(text) }))),
  windows: opt(z.record(hostName, z.looseObject({ opened: time, until: time, by: text }))),
  alerts: opt(z.array(z.looseObject({ time, host: text, kind: text, detail: z.string() }))),
  macSeed: opt(z.string().check(z.regex(/^[0-9a-f]{32}$/, { error: 'expected 32 hex digits' }))),
  journalSeq: opt(count),
});

/** Parse what db.json held; a LabError naming the file and the first bad field when it is not an inventory. */
export function parseInventory(raw: unknown, file: string): InventoryData {
  if (raw === null || typeof raw !== 'object' || Array.isArray(raw)) {
    const got = raw === null ? 'null' : Array.isArray(raw) ? 'an array' : typeof raw;
    throw refused(file, '(top level)', `expected an object, got ${got}`);
  }
  const r = schema.safeParse(raw);
  if (!r.success) {
    const first = r.error.issues[0]!;
    throw refused(file, fieldPath(first.path), issueText(first));
  }
  // The file's own objects, not zod's copies: key order and fields lab does not know stay as they were.
  const data = migrate(raw as StoredInventory);
  if (data.imageVms === undefined) throw refused(file, 'imageVms', 'expected an object (inventory version 2)');
  // Record names for each map must be the record's own (a copy under another key would shadow a host).
  for (const map of ['hosts', 'imageVms'] as const) {
    for (const [k, h] of Object.entries(data[map])) if (h.name !== k) throw refused(file, `${map}.${k}.name`, `expected "${k}", the key it is filed under`);
  }
  const parsed: InventoryData = {
    ...data,
    hosts: keyed(data.hosts),
    imageVms: keyed(data.imageVms),
    leases: keyed(data.leases),
    images: keyed(data.images),
    monitors: data.monitors && keyed(data.monitors),
    windows: keyed(data.windows),
    alerts: data.alerts ?? [],
  };
  if ((raw as StoredInventory).version !== 2) migrated.add(parsed);
  return parsed;
}

/** db.json as any version of lab wrote it. */
type StoredInventory = Omit<InventoryData, 'version' | 'imageVms'> & { version: 1 | 2; imageVms?: InventoryData['imageVms'] };

/** Version 1 kept image VMs as hosts of a reserved environment "images": they move to imageVms, every record kept as it was. */
const IMAGES_V1_ENV = 'images';

function migrate(data: StoredInventory): InventoryData {
  if (data.version === 2) return data as InventoryData;
  const hosts: InventoryData['hosts'] = {};
  const imageVms: InventoryData['imageVms'] = {};
  for (const [k, h] of Object.entries(data.hosts)) {
    if (h.env === IMAGES_V1_ENV && h.role === 'image') {
      const { env: _env, role: _role, ...vm } = h;
      imageVms[k] = vm;
    } else hosts[k] = h;
  }
  return { ...data, version: 2, hosts, imageVms };
}

/** Inventories read from a file of an older version: the next change writes them whatever it changed. */
const migrated = new WeakSet<InventoryData>();
export const wasMigrated = (data: InventoryData) => migrated.has(data);

function refused(file: string, field: string, why: string): LabError {
  return new LabError(`${file}: ${field}: ${why}; the file was left as it is`, {
    exitCode: ExitCode.usage,
    hint: 'restore it from a copy, or move it away to start an empty inventory',
  });
}
