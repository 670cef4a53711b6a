#!/usr/bin/env node
// Checks that imports between src/ layers only point the way docs/architecture.md (## Layers) allows.
import { readdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
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

const IMPORT_RE = /((?:import|export)[^'"]*?from\s+['"])(\.[^'"]+)(['"])|(import\(\s*['"])(\.[^'"]+)(['"]\s*\))/g;

/**
 * Every import between layers: only downward (ALLOWED), and only through the other layer's index.ts, its
 * public surface (STYLE.md: each folder's index.ts is its public surface).
 */
export function violations(root) {
  const src = resolve(root, 'src');
  const out = [];
  for (const f of files(src)) {
    const layer = relative(src, f).split('/')[0];
    if (!(layer in ALLOWED)) continue;
    const text = readFileSync(f, 'utf8');
    for (const m of text.matchAll(IMPORT_RE)) {
      const spec = m[2] ?? m[5];
      const rel = relative(src, resolve(dirname(f), spec));
      const target = rel.split('/')[0];
      if (target === layer || target.startsWith('..') || target.endsWith('.ts')) continue;
      if (!ALLOWED[layer].includes(target)) out.push(`${relative(root, f)}: ${layer} imports ${target} (${spec})`);
      else if (rel !== `${target}/index.ts`) out.push(`${relative(root, f)}: imports ${rel} past ${target}/index.ts`);
    }
  }
  return out;
}

/** Rewrite cross-layer imports to go through the layer's index.ts (the other layer must export the names). */
export function fixIndexImports(root) {
  const src = resolve(root, 'src');
  let changed = 0;
  for (const f of files(src)) {
    const layer = relative(src, f).split('/')[0];
    if (!(layer in ALLOWED)) continue;
    const text = readFileSync(f, 'utf8');
    const next = text.replace(IMPORT_RE, (all, a, spec, z, b, spec2, z2) => {
      const sp = spec ?? spec2;
      const rel = relative(src, resolve(dirname(f), sp));
      const target = rel.split('/')[0];
      if (target === layer || target.startsWith('..') || target.endsWith('.ts') || rel === `${target}/index.ts`) return all;
      let to = relative(dirname(f), resolve(src, target, 'index.ts'));
      if (!to.startsWith('.')) to = `./${to}`;
      return spec !== undefined ? `${a}${to}${z}` : `${b}${to}${z2}`;
    });
    if (next !== text) {
      writeFileSync(f, next);
      changed++;
    }
  }
  return changed;
}

if (import.meta.url === `file://${process.argv[1]}`) {
  if (process.argv.includes('--fix')) console.log(`rewrote imports in ${fixIndexImports(process.cwd())} files`);
  const v = violations(process.cwd());
  for (const line of v) console.log(line);
  process.exit(v.length ? 1 : 0);
}
