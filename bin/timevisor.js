#!/usr/bin/env node
// The timevisor CLI. TypeScript sources are loaded through tsx, so a fresh checkout runs without a build step.
import { register } from 'tsx/esm/api';

register();
await import('../src/cli/main.ts');
