import * as z from 'zod/mini';
import '../util/zod-locale.js';
import { DISTRO_NAMES } from '../distros/index.js';
import { PROVIDER_NAMES } from '../providers/index.js';

/**
 * The one description of environments.ts. The user's types (LabConfigInput,
 * given by defineLab) and the parsed types everything else uses (LabConfig)
 * both come from here. zod/mini as everywhere in lab: with classic zod in
 * the build, its full core (about 170 KB) loaded at every command's start.
 */

const NAME = /^[a-z][a-z0-9-]{0,30}[a-z0-9]$|^[a-z]$/;
const name = z
  .string()
  .check(z.regex(NAME, { error: 'expected a lower-case name (letters, digits, dashes; starts with a letter; at most 32 characters)' }));

const networkSchema = z.strictObject({
  /** A label for the network: the bridge and namespace names derive from it. */
  name: z._default(name, 'labnet'),
  /**
   * bridge: guests get real addresses on a bridge and the server listens on
   * the gateway address. user: QEMU user networking / VirtualBox NAT; guests
   * reach the server at 10.0.2.2 and the server listens on loopback.
   */
  mode: z._default(z.enum(['bridge', 'user']), 'bridge'),
  cidr: z.cidrv4({ error: 'expected an IPv4 network such as 10.77.0.0/24' }),
  gateway: z.ipv4({ error: 'expected an IPv4 address such as 10.77.0.1' }),
  serverPort: z._default(z.int().check(z.minimum(1), z.maximum(65535)), 8077),
});

const imageSchema = z.strictObject({
  distro: z.enum(DISTRO_NAMES),
  /** Path of the installer ISO, relative to the lab folder. The mini distro needs none. */
  iso: z.optional(z.string().check(z.minLength(1))),
  /** Path of the kickstart template (nunjucks), relative to the lab folder. */
  kickstart: z.string().check(z.minLength(1)),
  cpus: z._default(z.int().check(z.minimum(1), z.maximum(64)), 1),
  /** MiB */
  memory: z.int().check(z.minimum(64), z.maximum(1048576)),
  /** MiB */
  disk: z.int().check(z.minimum(16), z.maximum(16777216)),
  /** How `lab image build` boots the installer: its kernel directly, or over PXE. */
  install: z._default(z.enum(['kernel', 'pxe']), 'kernel'),
  /** Seconds an install may take before it counts as stalled. */
  installTimeout: z._default(z.int().check(z.minimum(10), z.maximum(86400)), 900),
});

const groupSchema = z.strictObject({
  role: name,
  image: name,
  /** A fixed number of hosts. Use either count or min and max. */
  count: z.optional(z.int().check(z.minimum(0), z.maximum(250))),
  min: z.optional(z.int().check(z.minimum(0), z.maximum(250))),
  max: z.optional(z.int().check(z.minimum(1), z.maximum(250))),
  /** The service this group runs: a folder under services/. */
  service: z.optional(name),
  version: z.optional(z.string().check(z.minLength(1))),
  /** provider libvirt: the hypervisor (a key of hypervisors) every host of the group runs on. */
  hypervisor: z.optional(name),
  /** provider libvirt, without hypervisor: spread (fewest hosts of the group, then most free capacity) or pack (the fullest that still has room). */
  placement: z._default(z.enum(['spread', 'pack']), 'spread'),
});

const environmentSchema = z.strictObject({
  groups: z.array(groupSchema).check(z.minLength(1, { error: 'expected at least one group' })),
  /**
   * Its hosts trust each other for root: a key pair of the environment's own,
   * whose private half each host holds and whose public half each authorizes,
   * with the environment's hosts pinned in root's known_hosts (src/env/trust.ts).
   */
  trust: z.optional(z.boolean()),
});

/** A machine running libvirt that lab places VMs on (provider libvirt). */
const hypervisorSchema = z.strictObject({
  /** libvirt's connection URI, e.g. qemu+ssh://root@10.77.0.11/system, or qemu:///system on this machine. */
  uri: z.string().check(z.regex(/^[a-z0-9+]+:\/\/[^\s'"\\;]*$/, { error: 'expected a libvirt URI such as qemu+ssh://root@hv1/system' })),
  /** The bridge on the hypervisor its guests' NICs join: one L2 segment with the lab's gateway. */
  bridge: z.string().check(z.regex(/^[A-Za-z0-9_.-]{1,15}$/, { error: 'expected an interface name such as br0' })),
  /** Capacity lab may use there: virtual CPUs and MiB of guest memory. */
  cpus: z.int().check(z.minimum(1), z.maximum(4096)),
  memory: z.int().check(z.minimum(64)),
  /** The storage pool (a folder under /var/lib/libvirt/images) lab keeps its volumes in; made when missing. */
  pool: z._default(name, 'lab'),
  /** auto: KVM when the hypervisor offers it; tcg where /dev/kvm exists but does not work. */
  accel: z._default(z.enum(['auto', 'kvm', 'tcg']), 'auto'),
});

export const labSchema = z.strictObject({
  name: z._default(name, 'lab'),
  provider: z._default(z.enum(PROVIDER_NAMES), 'qemu'),
  network: networkSchema,
  /** provider libvirt: the hypervisors, by name; without it, one: qemu:///system on this machine. */
  hypervisors: z.optional(z.record(name, hypervisorSchema)),
  images: z.record(name, imageSchema),
  environments: z.record(name, environmentSchema),
});

export type LabConfigInput = z.input<typeof labSchema>;
export type LabConfig = z.output<typeof labSchema>;
export type NetworkConfig = LabConfig['network'];
export type ImageConfig = LabConfig['images'][string];
export type GroupConfig = LabConfig['environments'][string]['groups'][number];
export type EnvironmentConfig = LabConfig['environments'][string];
export type Distro = ImageConfig['distro'];
export type ProviderName = LabConfig['provider'];
export type HypervisorConfig = z.output<typeof hypervisorSchema>;
export type Placement = GroupConfig['placement'];
