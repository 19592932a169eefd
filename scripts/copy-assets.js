// The part of `npm run build` that tsc does not do: copy the files the compiled program reads at
// run time (the Redis Lua scripts, the status page) next to the compiled modules that read them.
//
//   node scripts/copy-assets.js [outDir]     (outDir defaults to dist/ of the repository)
import { copyFileSync, mkdirSync, readdirSync } from 'node:fs';
import { join, resolve } from 'node:path';
import process from 'node:process';
import { fileURLToPath, URL } from 'node:url';

const root = fileURLToPath(new URL('..', import.meta.url));
const outDir = resolve(process.argv[2] ?? join(root, 'dist'));

const assets = [
  { from: join(root, 'src', 'queue', 'lua'), to: join(outDir, 'queue', 'lua'), ext: '.lua' },
  { from: join(root, 'src', 'metrics'), to: join(outDir, 'metrics'), ext: '.html' },
];

for (const { from, to, ext } of assets) {
  mkdirSync(to, { recursive: true });
  for (const file of readdirSync(from)) {
    if (file.endsWith(ext)) copyFileSync(join(from, file), join(to, file));
  }
}
