#!/usr/bin/env node
// Checks that imports between src/ layers only point the way docs/architecture.md (## Layers) allows.
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { join, relative, resolve, dirname } from 'node:path';

export const ALLOWED = {
  core: [],
  devices: ['core'],
  hypervisor: ['core', 'devices'],
  guest: ['core'],
  vmm: ['core', 'devices', 'hypervisor', 'guest'],
  world: ['core', 'devices', 'hypervisor', 'guest', 'vmm'],
  live: ['core', 'devices', 'hypervisor'],
  lab: ['core', 'trace', 'guest', 'vmm', 'world'],
  doctor: ['core', 'guest', 'vmm', 'world'],
  trace: ['core', 'devices', 'hypervisor', 'guest', 'vmm', 'world', 'live', 'lab', 'doctor', 'report'],
  report: ['core', 'devices', 'hypervisor', 'guest', 'vmm', 'world', 'live', 'lab', 'doctor', 'trace'],
  cli: ['core', 'devices', 'hypervisor', 'guest', 'vmm', 'world', 'live', 'lab', 'doctor', 'trace', 'report', 'web'],
  web: ['core', 'devices', 'hypervisor', 'guest', 'vmm', 'world', 'live', 'lab', 'doctor', 'trace', 'report'],
};

function files(dir, out = []) {
  for (const n of readdirSync(dir)) {
    const p = join(dir, n);
    if (statSync(p).isDirectory()) files(p, out);
    else if (p.endsWith('.ts')) out.push(p);
  }
  return out;
}

export function violations(root) {
  const src = resolve(root, 'src');
  const out = [];
  for (const f of files(src)) {
    const layer = relative(src, f).split('/')[0];
    if (!(layer in ALLOWED)) continue;
    const text = readFileSync(f, 'utf8');
    for (const m of text.matchAll(/(?:import|export)[^'"]*?from\s+['"](\.[^'"]+)['"]|import\(\s*['"](\.[^'"]+)['"]\s*\)/g)) {
      const spec = m[1] ?? m[2];
      const target = relative(src, resolve(dirname(f), spec)).split('/')[0];
      if (target === layer || target.startsWith('..') || target.endsWith('.ts')) continue;
      if (!ALLOWED[layer].includes(target)) out.push(`${relative(root, f)}: ${layer} imports ${target} (${spec})`);
    }
  }
  return out;
}

if (import.meta.url === `file://${process.argv[1]}`) {
  const v = violations(process.cwd());
  for (const line of v) console.log(line);
  process.exit(v.length ? 1 : 0);
}
