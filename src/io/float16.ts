// Exact conversions between float32 and the two 16-bit float formats used in checkpoints:
// IEEE 754 binary16 ("F16") and bfloat16 ("BF16"). Used by the safetensors reader/writer
// (format: https://github.com/huggingface/safetensors#format).
//
// Every function here works on the float32 *bit pattern*, not on float64 arithmetic, so the
// results are exact: encoding rounds to nearest with ties to even (IEEE default), overflow goes
// to ±Infinity, values below half the smallest subnormal go to ±0 (sign kept), and NaN stays NaN.
// Decoding is always exact because every F16/BF16 value is representable in float32.
//
// Scalar inputs are JS numbers; they are first rounded to float32 (Math.fround), because the
// contract is f32 -> f16. Rounding a float64 straight to f16 could differ in rare tie cases.

// One scratch word shared by the scalar helpers. The Float32Array and Uint32Array views use the
// same (host) byte order, so reading bits through them is correct on any endianness.
const scratchF32 = new Float32Array(1);
const scratchU32 = new Uint32Array(scratchF32.buffer);

/** Float32 bit pattern of `x` (after rounding it to float32). */
export function float32Bits(x: number): number {
  scratchF32[0] = x;
  return scratchU32[0];
}

/** The float32 whose bit pattern is `bits` (an unsigned 32-bit integer). */
export function float32FromBits(bits: number): number {
  scratchU32[0] = bits >>> 0;
  return scratchF32[0];
}

/** Encode float32 bits to binary16 bits, round-to-nearest-even. */
function f32BitsToF16Bits(b: number): number {
  const sign = (b >>> 16) & 0x8000;
  const exp = (b >>> 23) & 0xff;
  const mant = b & 0x7fffff;

  if (exp === 0xff) {
    // Infinity keeps a zero mantissa. For NaN keep the top payload bits but force the quiet bit,
    // otherwise a NaN whose payload lives only in the low 13 bits would turn into Infinity.
    return mant === 0 ? sign | 0x7c00 : sign | 0x7e00 | (mant >>> 13);
  }

  // Re-bias the exponent: float32 bias 127, binary16 bias 15.
  const e = exp - 127 + 15;
  if (e >= 0x1f) return sign | 0x7c00; // too large even before rounding

  if (e <= 0) {
    // Result is a binary16 subnormal (or zero). Below 2^-25 everything rounds to zero; exactly
    // 2^-25 is a tie between 0 and the smallest subnormal and goes to the even one, zero.
    // (float32 subnormals land here too, with e = -112.)
    if (e < -10) return sign;
    // With the implicit bit, the value is full * 2^(exp-150); the subnormal unit is 2^-24,
    // so the subnormal mantissa is full >> (14 - e), e in [-10, 0] -> shift in [14, 24].
    const full = mant | 0x800000;
    const shift = 14 - e;
    let h = full >>> shift;
    const rem = full & ((1 << shift) - 1);
    const half = 1 << (shift - 1);
    if (rem > half || (rem === half && (h & 1) === 1)) h++;
    // If rounding carries to 0x400 that is exactly the smallest normal's encoding.
    return sign | h;
  }

  let h = (e << 10) | (mant >>> 13);
  const rem = mant & 0x1fff;
  if (rem > 0x1000 || (rem === 0x1000 && (h & 1) === 1)) h++;
  // A carry out of the mantissa bumps the exponent, and from 0x7bff it gives 0x7c00 = Infinity,
  // which is the correct rounding for values in [65520, 65536).
  return sign | h;
}

/** Decode binary16 bits to a float32-representable number (exact). */
function f16BitsToNumber(h: number): number {
  const sign = (h & 0x8000) !== 0 ? -1 : 1;
  const exp = (h >>> 10) & 0x1f;
  const mant = h & 0x3ff;
  if (exp === 0) return sign * mant * 2 ** -24; // zero or subnormal; sign*0 keeps -0
  if (exp === 0x1f) return mant === 0 ? sign * Infinity : NaN;
  return sign * (0x400 + mant) * 2 ** (exp - 25);
}

/** Encode float32 bits to bfloat16 bits, round-to-nearest-even. */
function f32BitsToBf16Bits(b: number): number {
  if ((b & 0x7f800000) === 0x7f800000 && (b & 0x7fffff) !== 0) {
    // NaN: truncating could clear every payload bit and produce Infinity, so force the quiet bit.
    return ((b >>> 16) | 0x0040) & 0xffff;
  }
  // bfloat16 is the top half of a float32, so rounding is adding just under half an ulp plus
  // the lowest kept bit (ties to even) and truncating. Carries propagate into the exponent,
  // giving Infinity on overflow. b + 0x8000 < 2^32 for every non-NaN b, so >>> is safe.
  return ((b + 0x7fff + ((b >>> 16) & 1)) >>> 16) & 0xffff;
}

/** float32 -> binary16 bits (0..0xffff). */
export function f32ToF16(x: number): number {
  return f32BitsToF16Bits(float32Bits(x));
}

/** binary16 bits -> number (exactly a float32 value). */
export function f16ToF32(h: number): number {
  return f16BitsToNumber(h & 0xffff);
}

/** float32 -> bfloat16 bits (0..0xffff). */
export function f32ToBf16(x: number): number {
  return f32BitsToBf16Bits(float32Bits(x));
}

/** bfloat16 bits -> number (exactly a float32 value). */
export function bf16ToF32(h: number): number {
  return float32FromBits((h & 0xffff) << 16);
}

// Decoding F16 tensors of millions of elements is a hot path when loading checkpoints; a 256 KB
// table built on first use turns it into one lookup per element.
let f16Table: Float32Array | undefined;
function getF16Table(): Float32Array {
  if (f16Table === undefined) {
    const t = new Float32Array(0x10000);
    for (let h = 0; h < 0x10000; h++) t[h] = f16BitsToNumber(h);
    f16Table = t;
  }
  return f16Table;
}

/** Encode a Float32Array to binary16 bit patterns. */
export function float32ToFloat16Bits(src: Float32Array): Uint16Array {
  // A Float32Array's byteOffset is always a multiple of 4, so this view is always valid.
  const bits = new Uint32Array(src.buffer, src.byteOffset, src.length);
  const out = new Uint16Array(src.length);
  for (let i = 0; i < bits.length; i++) out[i] = f32BitsToF16Bits(bits[i]);
  return out;
}

/** Decode binary16 bit patterns to a Float32Array (exact). */
export function float16BitsToFloat32(src: Uint16Array): Float32Array {
  return float16BitsToFloat32Into(src, new Float32Array(src.length));
}

/**
 * Decode binary16 bit patterns into `dst` from `dstOffset` on (exact), without allocating: the
 * checkpoint loader decodes a file chunk straight into a tensor's memory.
 */
export function float16BitsToFloat32Into(src: Uint16Array, dst: Float32Array, dstOffset = 0): Float32Array {
  checkRoom("float16BitsToFloat32Into", src.length, dst.length, dstOffset);
  const table = getF16Table();
  for (let i = 0; i < src.length; i++) dst[dstOffset + i] = table[src[i]];
  return dst;
}

function checkRoom(fn: string, n: number, room: number, offset: number): void {
  if (!Number.isInteger(offset) || offset < 0 || offset + n > room) {
    throw new RangeError(`${fn}: ${n} values from offset ${offset} do not fit in a destination of ${room}`);
  }
}

/** Encode a Float32Array to bfloat16 bit patterns. */
export function float32ToBfloat16Bits(src: Float32Array): Uint16Array {
  const bits = new Uint32Array(src.buffer, src.byteOffset, src.length);
  const out = new Uint16Array(src.length);
  for (let i = 0; i < bits.length; i++) out[i] = f32BitsToBf16Bits(bits[i]);
  return out;
}

/** Decode bfloat16 bit patterns to a Float32Array (exact, NaN payloads kept). */
export function bfloat16BitsToFloat32(src: Uint16Array): Float32Array {
  return bfloat16BitsToFloat32Into(src, new Float32Array(src.length));
}

/** Decode bfloat16 bit patterns into `dst` from `dstOffset` on (exact, NaN payloads kept), without allocating. */
export function bfloat16BitsToFloat32Into(src: Uint16Array, dst: Float32Array, dstOffset = 0): Float32Array {
  checkRoom("bfloat16BitsToFloat32Into", src.length, dst.length, dstOffset);
  // Writing through a Uint32Array view of the output avoids a number round trip per element.
  const outBits = new Uint32Array(dst.buffer, dst.byteOffset + 4 * dstOffset, src.length);
  for (let i = 0; i < src.length; i++) outBits[i] = src[i] << 16;
  return dst;
}
