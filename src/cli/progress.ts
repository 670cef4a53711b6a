// Progress on a terminal for long work: a one-line bar on stderr, only when stderr is a TTY, redrawn at
// most ten times a second, so piped output and tests stay clean.
export interface Progress {
  /** `note` is printed after the percentage (e.g. "120/1000 VMs, ETA 1m 05s"). */
  update: (fraction: number, note?: string) => void;
  done: (note?: string) => void;
}

export function progressBar(label: string, stream: NodeJS.WriteStream = process.stderr): Progress {
  if (!stream.isTTY) return { update: () => {}, done: () => {} };
  let last = 0;
  let lastNote = '';
  const draw = (f: number, note = '') => {
    const width = 30;
    const n = Math.round(Math.min(1, Math.max(0, f)) * width);
    // pad over a longer note drawn before
    const tail = note.padEnd(lastNote.length);
    lastNote = note;
    stream.write(`\r${label} [${'#'.repeat(n)}${' '.repeat(width - n)}] ${(f * 100).toFixed(0).padStart(3)}%${tail ? `  ${tail}` : ''}`);
  };
  return {
    update(f, note) {
      const now = Date.now();
      if (now - last < 100) return;
      last = now;
      draw(f, note);
    },
    done(note) {
      draw(1, note ?? (lastNote === '' ? '' : ' '));
      stream.write('\n');
    },
  };
}
