import { shellWord as q } from '../util/shell.js';
/**
 * What a host shows it has deployed, as opposed to what the inventory last
 * recorded: a VM recreated, or killed before its page cache reached the disk,
 * comes back without the release the inventory remembers. A deploy leaves a
 * marker on the host once the release is on its disk, and the settle step
 * reads it back.
 */

export const DEPLOYED_DIR = '/etc/lab/deployed';


/**
 * Flush the release first, then write the marker and flush it too: a marker
 * that survives a crash means its release did.
 */
export function markDeployedCommand(service: string, version: string): string {
  const file = `${DEPLOYED_DIR}/${service}`;
  return `sync && mkdir -p ${DEPLOYED_DIR} && printf '%s\\n' ${q(version)} > ${q(`${file}.new`)} && mv -f ${q(`${file}.new`)} ${q(file)} && sync`;
}

export function readDeployedCommand(service: string): string {
  return `cat ${q(`${DEPLOYED_DIR}/${service}`)} 2>/dev/null || true`;
}

/** The marker's content: a version, or undefined when nothing is deployed. */
export function parseDeployed(stdout: string): string | undefined {
  const v = stdout.trim();
  return v === '' ? undefined : v;
}
