// Progress on a terminal for long work: a one-line bar with an ETA on stderr, only when stderr is a TTY
// and the user did not ask for --quiet, redrawn at most ten times a second, so piped output and tests
// stay clean.
export interface Progress {
  /** `note` is shown after the bar (e.g. "120/1000 VMs"). */
  update: (fraction: number, note?: string) => void;
  done: (note?: string) => void;
}

export interface ProgressOptions {
  quiet?: boolean;
  /** Milliseconds since some fixed point (tests pass a fake clock). */
  now?: () => number;
}

/** "ETA 1m05s" from the elapsed time and the fraction done; "" until the estimate means something. */
export function eta(elapsedMs: number, fraction: number): string {
  if (fraction <= 0.01 || elapsedMs < 500 || fraction >= 1) return '';
  const left = Math.round((elapsedMs * (1 - fraction)) / fraction / 1000);
  const m = Math.floor(left / 60);
  return `ETA ${m > 0 ? `${m}m${String(left % 60).padStart(2, '0')}s` : `${left}s`}`;
}

export function progressBar(label: string, stream: NodeJS.WriteStream = process.stderr, opts: ProgressOptions = {}): Progress {
  if (!stream.isTTY || opts.quiet) return { update: () => {}, done: () => {} };
  const now = opts.now ?? Date.now;
  const start = now();
  let last = 0;
  let drawn = false;
  let lastNote = '';
  const draw = (f: number, note = lastNote) => {
    lastNote = note;
    const width = 30;
    const c = Math.min(1, Math.max(0, f));
    const n = Math.round(c * width);
    const e = eta(now() - start, c);
    stream.write(
      `\r${label} [${'#'.repeat(n)}${' '.repeat(width - n)}] ${(c * 100).toFixed(0).padStart(3)}%${e ? ` ${e}` : ''}${note ? `  ${note}` : ''}\x1b[K`,
    );
    drawn = true;
  };
  return {
    update(f, note) {
      const t = now();
      if (t - last < 100) return;
      last = t;
      draw(f, note);
    },
    done(note) {
      // a run too short to have drawn anything leaves no bar behind
      if (!drawn) return;
      draw(1, note);
      stream.write('\n');
    },
  };
}
