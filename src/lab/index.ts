// lab: real guests under real QEMU — image assembly from Debian packages, QMP/QGA clients, the serial
// clock protocol, in-guest ftrace import — and each experiment beside its simulated twin.
export * from './cpio.ts';
export * from './debian.ts';
export * from './image.ts';
export * from './protocol.ts';
export * from './qmp.ts';
export * from './qga.ts';
export * from './qemu.ts';
export * from './host-chrony.ts';
export * from './ftrace.ts';
export * from './twin.ts';
export * from './experiments.ts';
export * from './boot-compare.ts';
export { ensureDir, removePendingTemporaries, writeFileAtomic } from './cache.ts';
export { adopt, killChildren } from './children.ts';
export * from './snapshot.ts';
export * from './migrate.ts';
export * from './chrony-pause.ts';
export * from './chrony-twin.ts';
