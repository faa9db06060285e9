/**
 * The URI virsh connects with: a qemu+ssh URI that names no command of its
 * own gets lab's ssh wrapper (timeouts, so a hypervisor gone is seen in
 * seconds; lab's own known hosts, pinned at first contact).
 */
export function connectUri(uri: string, sshCommand: string | undefined): string {
  if (!sshCommand || !/^[a-z0-9]+\+ssh:\/\//.test(uri) || /[?&]command=/.test(uri)) return uri;
  return `${uri}${uri.includes('?') ? '&' : '?'}command=${encodeURIComponent(sshCommand)}`;
}

/** The machine a remote URI names (where its QEMU listens for a migration), or undefined for a local one. */
export function uriHost(uri: string): string | undefined {
  const m = /^[a-z0-9+]+:\/\/(?:[^@/]*@)?(\[[^\]]+\]|[^:/?]+)/.exec(uri);
  return m?.[1] || undefined;
}
