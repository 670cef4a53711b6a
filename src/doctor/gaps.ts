// What timevisor's guest model does not (yet) reproduce of a real machine's clock boot lines, stated
// precisely. compareTwin's differences are annotated with these; the self-twin test fails on any
// boot-line difference that is not listed here, so a gap is either explained or fixed — never hidden.
import type { TwinDifference } from './twin.ts';

export interface KnownGap {
  id: string;
  /** Matches the machine's line (or the twin's, for lines only the twin prints). */
  line: RegExp;
  kinds: TwinDifference['what'][];
  explanation: string;
}

export const KNOWN_GAPS: KnownGap[] = [];

export function gapFor(d: TwinDifference): KnownGap | undefined {
  const line = d.machine || d.twin;
  return KNOWN_GAPS.find((g) => g.kinds.includes(d.what) && g.line.test(line));
}
