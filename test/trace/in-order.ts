// Trace tests: lines matching patterns in order.
import assert from 'node:assert/strict';

/** Index of the first line matching each pattern, each searched after the previous one (fails when one is missing). */
export function inOrder(lines: readonly string[], patterns: readonly RegExp[]): number[] {
  const at: number[] = [];
  let from = 0;
  for (const p of patterns) {
    const i = lines.findIndex((l, n) => n >= from && p.test(l));
    assert.ok(i >= 0, `no line matching ${p} after line ${from}`);
    at.push(i);
    from = i + 1;
  }
  return at;
}
