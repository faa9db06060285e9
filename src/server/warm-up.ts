import { Agent, createServer, request, type RequestListener } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { Inventory } from '../inventory/store.js';

/**
 * Run the server's code once before it listens, so that a boot storm's first
 * wave does not meet code that has never run. Cold, the first hundred
 * callbacks of a storm waited 45-65 ms against 17-20 ms for the ones after
 * (bench:storm): node's HTTP server, the body's parsing and the first lock of
 * the inventory (proper-lockfile's first lock took 10 ms) ran for the first
 * time, a hundred times at once. Nothing is recorded or logged: the commit
 * changes nothing, and the callbacks, sent over loopback to a listener of
 * its own that is closed after, carry no token and are refused before any
 * check that would log. Where loopback does not work (a namespace whose lo
 * is down), they fail at once and the server starts all the same.
 */
export async function warmUp(handler: RequestListener, inventory: Inventory, rounds = 10, clients = 10): Promise<void> {
  await inventory.update(() => undefined);
  const scratch = createServer(handler);
  const listening = await new Promise<boolean>((resolve) => {
    scratch.once('error', () => resolve(false));
    scratch.listen(0, '127.0.0.1', () => resolve(true));
  });
  if (!listening) return;
  const { port } = scratch.address() as AddressInfo;
  const agent = new Agent({ keepAlive: true, maxSockets: clients });
  const one = () =>
    new Promise<void>((resolve) => {
      const path = '/booted?host=lab-warm-up&mac=52:54:00:ff:ff:ff&ip=127.0.0.2';
      const req = request({ host: '127.0.0.1', port, path, method: 'POST', agent, headers: { 'content-type': 'application/x-www-form-urlencoded' } }, (res) => {
        res.resume();
        res.on('end', resolve);
      });
      req.on('error', () => resolve());
      req.setTimeout(1000, () => req.destroy());
      req.end('hostkey=none');
    });
  try {
    for (let i = 0; i < rounds; i++) await Promise.all(Array.from({ length: clients }, one));
  } finally {
    agent.destroy();
    await new Promise<void>((resolve) => {
      scratch.close(() => resolve());
      scratch.closeAllConnections();
    });
  }
}
