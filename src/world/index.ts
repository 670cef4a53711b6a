// world: hosts (oscillator, TSC, clocks), scenarios, the simulation that runs them.
export * from './oscillator.ts';
export * from './host.ts';
export * from './scenario.ts';
export * from './simulation.ts';
export * from './demo.ts';
