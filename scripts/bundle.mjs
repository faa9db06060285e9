// The CLI as one ES module plus the chunks its on-demand imports load
// (dist/cli.js, dist/chunks/), npm packages included: a command then reads
// a handful of files instead of resolving and evaluating a few hundred
// modules, which was most of its start-up (lab hosts list: 250 -> 165 ms).
// tsc's dist/ tree stays: its index.js is what a lab's TypeScript imports as
// 'lab', and its .d.ts files are the types.
// Left out: ssh2 (optional native parts, required on demand), jiti (required
// on demand; its babel is loaded only to compile), iconv-lite (express's
// body parsers require it; bundled, its 550 KB of code tables were parsed
// at every server start, while node's require loads the tables of a
// charset only when a body comes in it).
import { createHash } from 'node:crypto';
import { readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { build } from 'esbuild';

// Chunks are content-named: last build's would pile up.
rmSync('dist/chunks', { recursive: true, force: true });

// The build's identity: a hash of the sources and the locked packages (src/config/cache.ts keys the validated config by it).
const hash = createHash('sha256').update(readFileSync('package-lock.json'));
for (const f of readdirSync('src', { recursive: true }).map(String).sort()) {
  if (f.endsWith('.ts')) hash.update(f).update(readFileSync(path.join('src', f)));
}

const { metafile } = await build({
  entryPoints: { cli: 'src/cli.ts' },
  outdir: 'dist',
  chunkNames: 'chunks/[name]-[hash]',
  bundle: true,
  splitting: true,
  format: 'esm',
  platform: 'node',
  target: 'node20',
  sourcemap: true,
  external: ['ssh2', 'cpu-features', 'jiti', 'iconv-lite'],
  // Bundled CommonJS packages call require(); an ES module has none of its own.
  banner: { js: "import { createRequire as __labRequire } from 'node:module'; const require = __labRequire(import.meta.url);" },
  logLevel: 'warning',
  metafile: true,
  define: { __LAB_BUILD__: JSON.stringify(hash.digest('hex').slice(0, 16)) },
});
// Which packages each output holds: what the test of a command's loads reads (test/fixtures/loaded-packages.mjs).
writeFileSync('dist/bundle-meta.json', JSON.stringify(metafile));

// What `lab --help` lists of the built-in commands, summed up once here so that it need not load their modules (src/cli/commands.ts).
const { Command } = await import('commander');
const { commandSummaries } = await import('../dist/cli/commands.js');
writeFileSync('dist/commands.json', JSON.stringify(await commandSummaries(new Command('lab'))));
