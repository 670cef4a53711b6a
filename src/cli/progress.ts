// Progress on a terminal for long work: a one-line bar on stderr, only when stderr is a TTY, redrawn at
// most ten times a second, so piped output and tests stay clean.
export interface Progress {
  update: (fraction: number) => void;
  done: () => void;
}

export function progressBar(label: string, stream: NodeJS.WriteStream = process.stderr): Progress {
  if (!stream.isTTY) return { update: () => {}, done: () => {} };
  let last = 0;
  const draw = (f: number) => {
    const width = 30;
    const n = Math.round(Math.min(1, Math.max(0, f)) * width);
    stream.write(`\r${label} [${'#'.repeat(n)}${' '.repeat(width - n)}] ${(f * 100).toFixed(0).padStart(3)}%`);
  };
  return {
    update(f) {
      const now = Date.now();
      if (now - last < 100) return;
      last = now;
      draw(f);
    },
    done() {
      draw(1);
      stream.write('\n');
    },
  };
}
