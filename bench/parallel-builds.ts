// Build and boot 1, 2 and 4 mini guests at once, against the same number one
// after another: `lab image build` processes sharing one `lab serve`, real
// QEMU (TCG here). npm run bench:builds
import { execa } from 'execa';
import { lab, tempLab, serve, userNetworking, freePort } from '../test/helpers.js';
import { timed } from './stats.js';

const COUNTS = (process.env.COUNTS ?? '1,2,4').split(',').map(Number);
const MAX = Math.max(...COUNTS);

const port = await freePort();
const images = Array.from({ length: MAX }, (_, i) => `bench${i + 1}`);
const { dir, cleanup } = await tempLab((s) =>
  userNetworking(s)
    .replace('serverPort: 8077', `serverPort: ${port}`)
    .replace('    mini: {', images.map((n) => `    ${n}: { distro: 'mini', kickstart: 'kickstart/mini-ks.cfg', memory: 256, disk: 64 },\n`).join('') + '    mini: {'),
);
const server = await serve(dir, { configuredPort: true });

async function build(names: string[]): Promise<void> {
  const runs = await Promise.all(names.map((n) => lab(['--lab', dir, 'image', 'build', n, '--rebuild'])));
  for (const [i, r] of runs.entries()) if (r.exitCode !== 0) throw new Error(`${names[i]}: ${r.stderr}`);
}

try {
  await build(['bench1']); // warm the mini guest cache; not measured
  const rows: [number, number, number][] = [];
  for (const n of COUNTS) {
    const names = images.slice(0, n);
    const together = await timed(() => build(names));
    const oneByOne = await timed(async () => {
      for (const name of names) await build([name]);
    });
    rows.push([n, together, oneByOne]);
  }
  const one = rows.find((r) => r[0] === 1)?.[1] ?? rows[0]![1];
  console.log(`build and boot mini guests to their callback (QEMU ${process.env.LAB_ACCEL ?? 'accel probed'}, ${(await execa('nproc')).stdout} cores)`);
  console.log('guests  at once  one after another  at once / one guest');
  for (const [n, together, seq] of rows) {
    console.log(`${String(n).padEnd(6)}  ${together.toFixed(1).padStart(6)} s  ${seq.toFixed(1).padStart(15)} s  ${(together / one).toFixed(2).padStart(8)} x`);
  }
} finally {
  for (const n of images) await lab(['--lab', dir, 'image', 'del', n, '--force']);
  await server.stop();
  cleanup();
}
