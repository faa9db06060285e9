import net from 'node:net';
import { LabError } from '../../errors.js';

/**
 * A minimal QMP client: one command at a time over the VM's unix socket.
 * QMP answers each command with {"return": ...} or {"error": ...}, with
 * asynchronous {"event": ...} lines in between, which are skipped.
 */
export async function qmp(socket: string, command: string, args?: Record<string, unknown>, timeoutMs = 5000): Promise<unknown> {
  return new Promise((resolve, reject) => {
    const s = net.connect(socket);
    let buf = '';
    let stage: 'greeting' | 'capabilities' | 'command' = 'greeting';
    const timer = setTimeout(() => finish(new LabError(`QMP ${command} on ${socket}: no answer in ${timeoutMs} ms`)), timeoutMs);
    const finish = (err?: Error, value?: unknown) => {
      clearTimeout(timer);
      s.destroy();
      err ? reject(err) : resolve(value);
    };
    s.on('error', (e) => finish(new LabError(`QMP ${command} on ${socket}: ${e.message}`)));
    s.on('close', () => {
      // quit and system_reset close the socket as their answer.
      if (stage === 'command' && command === 'quit') finish(undefined, {});
    });
    s.on('data', (d) => {
      buf += d.toString('utf8');
      let nl: number;
      while ((nl = buf.indexOf('\n')) >= 0) {
        const line = buf.slice(0, nl).trim();
        buf = buf.slice(nl + 1);
        if (!line) continue;
        const msg = JSON.parse(line) as { QMP?: unknown; return?: unknown; error?: { desc: string }; event?: string };
        if (msg.event) continue;
        if (stage === 'greeting' && msg.QMP) {
          stage = 'capabilities';
          s.write(`${JSON.stringify({ execute: 'qmp_capabilities' })}\n`);
        } else if (stage === 'capabilities') {
          stage = 'command';
          s.write(`${JSON.stringify(args ? { execute: command, arguments: args } : { execute: command })}\n`);
        } else if (stage === 'command') {
          if (msg.error) finish(new LabError(`QMP ${command}: ${msg.error.desc}`));
          else finish(undefined, msg.return);
        }
      }
    });
  });
}
