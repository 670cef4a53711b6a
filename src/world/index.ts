// The world layer: hosts, scenarios, the resolver from scenario to VM options, and the simulation.
export * from './boot.ts';
export * from './demo.ts';
export * from './host.ts';
export * from './host-cpus.ts';
export * from './ntp-servers.ts';
export { Oscillator, type OscillatorConfig, tscCyclesAt } from '../core/index.ts';
export * from './resolve.ts';
export * from './scenario.ts';
export * from './simulation.ts';
export * from './work.ts';
export * from './world.ts';
export * from './sweep.ts';
export * from './sweep-results.ts';
