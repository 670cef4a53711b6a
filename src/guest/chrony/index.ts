// chronyd as a model (src/guest/chrony): sources, sourcestats regression, reference and the Linux clock driver.
export { Chronyd, type ChronydOptions, DEFAULT_PRECISION, DEFAULT_MAX_DISTANCE } from './chronyd.ts';
export { LocalClock, DEFAULT_MAX_SLEW_RATE_PPM, DEFAULT_MAX_DRIFT_PPM, MIN_SLEW_DURATION, MAX_SLEW_DURATION } from './local.ts';
export { Reference, type TrackingReport, type ChronyAdjustment } from './reference.ts';
export {
  NtpSource,
  type NtpServerLink,
  type NtpServerReply,
  INITIAL_DELAY,
  IBURST_GOOD_SAMPLES,
  IBURST_TOTAL_SAMPLES,
  MAX_BURST_INTERVAL,
} from './source.ts';
export { SourceStats, type NtpSample } from './sourcestats.ts';
export { findBestRegression, tCoef, median } from './regress.ts';
export {
  RefclockSource,
  SampleFilter,
  type PhcDevice,
  type RefclockPhcOptions,
  type PhcReadingMode,
  refclockRefId,
  weightedRegression,
  chi2Coef,
  PHC_READINGS,
} from './refclock.ts';
