// chrony's regress.c: the weighted linear regression over a source's samples, with the runs test that
// drops the oldest samples until the residuals look random, and the t and runs tables it uses.

/** regress.h MIN_SAMPLES_FOR_REGRESS. */
export const MIN_SAMPLES_FOR_REGRESS = 3;
/** regress.h REGRESS_RUNS_RATIO. */
export const REGRESS_RUNS_RATIO = 2;

// regress.c RGR_GetTCoef: the 99.95 % quantile of Student's t for 1..40 degrees of freedom.
const T_COEFS = [
  636.6, 31.6, 12.92, 8.61, 6.869, 5.959, 5.408, 5.041, 4.781, 4.587, 4.437, 4.318, 4.221, 4.14, 4.073, 4.015, 3.965, 3.922, 3.883, 3.85,
  3.819, 3.792, 3.768, 3.745, 3.725, 3.707, 3.69, 3.674, 3.659, 3.646, 3.633, 3.622, 3.611, 3.601, 3.591, 3.582, 3.574, 3.566, 3.558, 3.551,
];

export function tCoef(dof: number): number {
  return dof <= 40 ? Math.fround(T_COEFS[dof - 1]!) : 3.5; // the table is float in C
}

// regress.c critical_runs: the 5 % critical number of runs of same-sign residuals, by sample count.
const CRITICAL_RUNS = [
  0, 0, 0, 0, 0, 0, 0, 0, 2, 3, 3, 3, 4, 4, 5, 5, 5, 6, 6, 7, 7, 7, 8, 8, 9, 9, 9, 10, 10, 11, 11, 11, 12, 12, 13, 13, 14, 14, 14, 15, 15,
  16, 16, 17, 17, 18, 18, 18, 19, 19, 20, 20, 21, 21, 21, 22, 22, 23, 23, 24, 24, 25, 25, 26, 26, 26, 27, 27, 28, 28, 29, 29, 30, 30, 30,
  31, 31, 32, 32, 33, 33, 34, 34, 35, 35, 35, 36, 36, 37, 37, 38, 38, 39, 39, 40, 40, 40, 41, 41, 42, 42, 43, 43, 44, 44, 45, 45, 46, 46,
  46, 47, 47, 48, 48, 49, 49, 50, 50, 51, 51, 52, 52, 52, 53, 53, 54, 54, 55, 55, 56,
];

function nRuns(resid: readonly number[]): number {
  let runs = 1;
  for (let i = 1; i < resid.length; i++) {
    const same = (resid[i - 1]! < 0 && resid[i]! < 0) || (resid[i - 1]! > 0 && resid[i]! > 0);
    if (!same) runs++;
  }
  return runs;
}

export interface Regression {
  /** Intercept (offset at x = 0), slope (frequency), variance of the points, sd of intercept and slope. */
  b0: number;
  b1: number;
  s2: number;
  sb0: number;
  sb1: number;
  /** First sample kept after the runs test. */
  start: number;
  nruns: number;
  dof: number;
}

/**
 * RGR_FindBestRegression: x are times back from the newest sample (≤ 0), y offsets, w weights of the n
 * regression samples (large = less reliable). x and y may start with `m` extra older samples (chrony's
 * "runs samples", dropped from the register earlier) that only extend the runs test. Null when there are
 * fewer than 3 regression samples.
 */
export function findBestRegression(
  x: readonly number[],
  y: readonly number[],
  w: readonly number[],
  minSamples: number,
  m = 0,
): Regression | null {
  const n = w.length;
  if (n < MIN_SAMPLES_FOR_REGRESS) return null;
  // X(i), Y(i): the i-th regression sample, i from −m (runs samples) to n − 1
  const X = (i: number) => x[i + m]!;
  const Y = (i: number) => y[i + m]!;
  let start = 0;
  let a = 0;
  let b = 0;
  let u = 0;
  let V = 0;
  let W = 0;
  let resid: number[] = [];
  let residStart = 0;
  let runs = 0;
  for (;;) {
    let U = 0;
    W = 0;
    for (let i = start; i < n; i++) {
      U += X(i) / w[i]!;
      W += 1 / w[i]!;
    }
    u = U / W;
    let P = 0;
    let Q = 0;
    V = 0;
    for (let i = start; i < n; i++) {
      const ui = X(i) - u;
      P += Y(i) / w[i]!;
      Q += (Y(i) * ui) / w[i]!;
      V += (ui * ui) / w[i]!;
    }
    b = Q / V;
    a = P / W - b * u;
    // residuals also for the extra samples before start
    residStart = Math.max(n - (n - start) * REGRESS_RUNS_RATIO, -m);
    resid = [];
    for (let i = residStart; i < n; i++) resid.push(Y(i) - a - b * X(i));
    runs = nRuns(resid);
    if (runs > CRITICAL_RUNS[n - residStart]! || n - start <= MIN_SAMPLES_FOR_REGRESS || n - start <= minSamples) {
      if (start !== residStart) runs = nRuns(resid.slice(start - residStart)); // extra samples not counted in nruns
      break;
    }
    start++;
  }
  let ss = 0;
  for (let i = start; i < n; i++) ss += (resid[i - residStart]! * resid[i - residStart]!) / w[i]!;
  const npoints = n - start;
  ss /= npoints - 2;
  const sb1 = Math.sqrt(ss / V);
  const aa = u * sb1;
  return { b0: a, b1: b, s2: (ss * npoints) / W, sb0: Math.sqrt(ss / W + aa * aa), sb1, start, nruns: runs, dof: npoints - 2 };
}

/** RGR_FindMedian: the median (mean of the two middle values for an even count). */
export function median(v: readonly number[]): number {
  const s = [...v].sort((p, q) => p - q);
  const k = s.length >> 1;
  return s.length & 1 ? s[k]! : 0.5 * (s[k - 1]! + s[k]!);
}
