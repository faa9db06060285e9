// Start-up of everyday commands on a fresh lab (lab init's scaffold, nothing
// built), wall time of the whole process, interleaved with `node -e 0` so
// both see the same machine. No root needed: npm run bench:commands
import { execa } from 'execa';
import path from 'node:path';
import { repo, tempLab } from '../test/helpers.js';
import { median } from './stats.js';

const RUNS = Number(process.env.RUNS ?? 11);
const cli = path.join(repo, 'dist', 'cli.js');

const { dir, cleanup } = await tempLab();
try {
  const commands: [string, string[]][] = [
    ['node -e 0', ['-e', '0']],
    ['lab hosts list', [cli, '--lab', dir, 'hosts', 'list']],
    ['lab --help', [cli, '--lab', dir, '--help']],
    ['lab env status demo', [cli, '--lab', dir, 'env', 'status', 'demo']],
    ['lab services', [cli, '--lab', dir, 'services']],
  ];
  // Once each first: the lab's first command makes its key, token and database, and keeps the validated config.
  for (const [, args] of commands) await execa(process.execPath, args);
  const times = new Map(commands.map(([label]) => [label, [] as number[]]));
  for (let i = 0; i < RUNS; i++) {
    for (const [label, args] of commands) {
      const t = performance.now();
      const r = await execa(process.execPath, args, { reject: false });
      if (r.exitCode !== 0) throw new Error(`${label}: exit ${r.exitCode}: ${r.stderr}`);
      times.get(label)!.push((performance.now() - t) / 1000);
    }
  }
  const node = median(times.get('node -e 0')!);
  console.log(`median of ${RUNS}, interleaved, on ${(await import('node:os')).cpus().length} cores\n`);
  console.log('| command | median | vs node -e 0 |\n|---|---|---|');
  for (const [label] of commands) {
    const m = median(times.get(label)!);
    console.log(`| \`${label}\` | ${m.toFixed(3)} s | ${(m / node).toFixed(2)} x |`);
  }
} finally {
  cleanup();
}
