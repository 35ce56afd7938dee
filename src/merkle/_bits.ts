// Tree sizes and indices are plain numbers so they can go to JSON and KV
// unchanged. JavaScript bitwise operators truncate to 32 bits, so every bit
// manipulation here uses exact power-of-two division instead: dividing a safe
// integer by 2^k and flooring is exact in IEEE 754 arithmetic.

/** Throws a RangeError unless `value` is a safe non-negative integer. */
export function assertCount(value: unknown, what: string): asserts value is number {
  if (typeof value !== "number" || !Number.isSafeInteger(value) || value < 0) {
    throw new RangeError(`${what} must be a non-negative safe integer, got ${String(value)}`);
  }
}

/** `value >> shift` for safe integers of any size. */
export function shiftRight(value: number, shift: number): number {
  return Math.floor(value / 2 ** shift);
}

/** Bit `position` of `value` (0 or 1). */
export function bitAt(value: number, position: number): number {
  return shiftRight(value, position) % 2;
}

/** Number of bits needed to write `value` (0 for 0). */
export function bitLength(value: number): number {
  let length = 0;
  while (value > 0) {
    value = Math.floor(value / 2);
    length++;
  }
  return length;
}

/** Number of set bits of `value`. */
export function popCount(value: number): number {
  let count = 0;
  while (value > 0) {
    count += value % 2;
    value = Math.floor(value / 2);
  }
  return count;
}

/** Number of trailing zero bits of a positive `value`. */
export function trailingZeros(value: number): number {
  let count = 0;
  while (value > 0 && value % 2 === 0) {
    value /= 2;
    count++;
  }
  return count;
}

/** `bitLength(a ^ b)` without 32-bit truncation: the height at which a and b meet. */
export function xorBitLength(a: number, b: number): number {
  // Floor division never reaches 0 from a negative number; refuse instead of looping.
  if (a < 0 || b < 0) throw new RangeError("xorBitLength needs non-negative numbers");
  let length = 0;
  while (a !== b) {
    a = Math.floor(a / 2);
    b = Math.floor(b / 2);
    length++;
  }
  return length;
}
