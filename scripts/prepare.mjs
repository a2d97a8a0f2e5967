#!/usr/bin/env node
// `prepare`: builds dist/ wherever npm makes this package from source: `npm ci` in a clone, an
// install from git, `npm pack`, and `npm install <folder>`. For the last, npm links the folder as
// it is, without installing its devDependencies, so the build tools may be missing: then they are
// installed first (without scripts, so that this does not run again).
import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';

const root = new URL('..', import.meta.url);
const run = (args) => {
  const r = spawnSync('npm', args, { cwd: root, stdio: 'inherit' });
  if (r.status !== 0) process.exit(r.status ?? 1);
};
if (!existsSync(new URL('node_modules/.bin/vite', root))) run(['ci', '--ignore-scripts', '--no-audit', '--no-fund']);
run(['run', 'build']);
