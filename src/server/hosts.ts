import net from 'node:net';

/**
 * Which Host headers the server answers: IP literals (how guests and this
 * machine reach it), localhost, and the names it was told it has (its
 * public URL). A DNS name pointed at this machine by someone else (DNS
 * rebinding: a page on the web that then reads or drives the server through
 * the visitor's browser) always arrives as a name the server does not know.
 */
/** What a request for another name is told (421). */
export const OTHER_NAME = 'this server answers to its own addresses only';

export function hostAllowed(header: string | undefined, names: string[]): boolean {
  if (!header) return false;
  let host: string;
  try {
    host = new URL(`http://${header}`).hostname;
  } catch {
    return false;
  }
  const bare = host.startsWith('[') && host.endsWith(']') ? host.slice(1, -1) : host;
  if (net.isIP(bare) !== 0) return true;
  const name = bare.toLowerCase().replace(/\.$/, '');
  return name === 'localhost' || names.some((n) => n.toLowerCase() === name);
}
