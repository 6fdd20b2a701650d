/**
 * Argmax over plain arrays: the index of the first maximum, so ties go to the lowest index (like
 * torch.argmax and numpy.argmax). A NaN in first place is never beaten; elsewhere it never wins.
 */

/** Index (0-based, relative to `offset`) of the first maximum of values[offset, offset + length). */
export function argmaxAt(values: ArrayLike<number>, offset: number, length: number): number {
  let best = 0;
  for (let j = 1; j < length; j++) if (values[offset + j] > values[offset + best]) best = j;
  return best;
}

/** Row-wise index of the first maximum of a [rows, cols] array, row-major. */
export function argmaxRows(values: ArrayLike<number>, rows: number, cols: number): Int32Array {
  const out = new Int32Array(rows);
  for (let r = 0; r < rows; r++) out[r] = argmaxAt(values, r * cols, cols);
  return out;
}
