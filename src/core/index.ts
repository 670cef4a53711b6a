// core: exact time arithmetic, the event engine, the seeded PRNG, units, the trace recorder.
export * from './time.ts';
export * from './u64.ts';
export * from './engine.ts';
export * from './prng.ts';
export * from './trace.ts';
export * from './errors.ts';
export * from './units.ts';
export * from './pvclock-abi.ts';
export * from './vmclock-abi.ts';
export * from './apic-abi.ts';
export * from './oscillator.ts';
