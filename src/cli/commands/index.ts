// Every CLI command lives in its own file under commands/ and registers itself here (one line each).
import type { Command } from 'commander';
import { registerDevices } from './devices.ts';
import { registerDoctor } from './doctor.ts';
import { registerGuest } from './guest.ts';
import { registerKvm } from './kvm.ts';
import { registerLab } from './lab.ts';
import { registerMerge } from './merge.ts';
import { registerPvclock } from './pvclock.ts';
import { registerQga } from './qga.ts';
import { registerReport } from './report.ts';
import { registerRun } from './run.ts';
import { registerSchema } from './schema.ts';
import { registerServe } from './serve.ts';
import { registerSweep } from './sweep.ts';
import { registerTrace } from './trace.ts';

export function registerCommands(program: Command): void {
  registerDevices(program);
  registerDoctor(program);
  registerGuest(program);
  registerKvm(program);
  registerLab(program);
  registerMerge(program);
  registerPvclock(program);
  registerQga(program);
  registerReport(program);
  registerRun(program);
  registerSchema(program);
  registerServe(program);
  registerSweep(program);
  registerTrace(program);
}
