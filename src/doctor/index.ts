// doctor: read the running Linux system's timekeeping (read-only), explain it, and describe it as a
// scenario that makes the guest model its twin.
export { runDoctor, reportToJson, DOCTOR_SCHEMA, type DoctorReport, type DoctorOptions } from './doctor.ts';
export { explain, renderText, unreadable, CLOCKSOURCE_RATINGS, type Finding, type Severity } from './explain.ts';
export { liveSource, recordedSource, checkRecordedTree, RECORDED_TREE_ENTRIES, type SystemSource, type Reading } from './source.ts';
export { terminalSafe, jsonSafe, lineSafe } from './safe-text.ts';
export * from './parse.ts';
export { decodeTimex, timexQuery, readAdjtimex, TIMEX_LAYOUT, STA, type Timex } from './adjtimex.ts';
export { measureClockCost, CLOCK_IDS, type VdsoCost, type ClockCost } from './vdso.ts';
export {
  planTwin,
  machineView,
  compareTwin,
  renderComparison,
  guessProfile,
  kernelCmdline,
  mhzTextToKhz,
  lineShape,
  type TwinPlan,
  type GuestView,
  type MachineView,
  type TwinComparison,
  type TwinDifference,
} from './twin.ts';
export { KNOWN_GAPS, gapFor, type KnownGap } from './gaps.ts';
export { replayScenario, TWIN_SETTLE_NS } from './replay.ts';
