/** The toolkit's error contract: one line, matching what the caller needs to see. */
import assert from "node:assert/strict";

export function assertThrowsOneLine(fn: () => unknown, re: RegExp): void {
  assert.throws(fn, (e: unknown) => {
    assert.ok(e instanceof Error);
    assert.ok(!e.message.includes("\n"), `one line: ${e.message}`);
    assert.match(e.message, re);
    return true;
  });
}
