/**
 * Protocol Buffers wire format (https://protobuf.dev/programming-guides/encoding/): the subset an
 * ONNX writer needs (varints, fixed32 floats, length-delimited strings, bytes and nested messages,
 * packed repeated numbers) and a field reader to inspect what was written.
 *
 * An encoded message is a rope: a list of parts whose total length is known before any byte of a
 * large payload is produced. A part is either bytes or a `LazyBytes` that makes its bytes when the
 * rope is written out, so a model's weights are read one tensor at a time and copied once, into
 * the output buffer or file, however deeply the message that holds them is nested.
 */

/** Bytes made on demand (a tensor read from a checkpoint): `length` is known up front. */
export interface LazyBytes {
  readonly length: number;
  produce(): Uint8Array;
}

export type Part = Uint8Array | LazyBytes;

/** An encoded message: its parts in order and their total length in bytes. */
export interface Encoded {
  readonly parts: readonly Part[];
  readonly length: number;
}

/** Wire types. */
export const VARINT = 0;
export const FIXED64 = 1;
export const LENGTH_DELIMITED = 2;
export const FIXED32 = 5;

const TWO_POW_32 = 2 ** 32;

function pushVarint(out: number[], value: number | bigint): void {
  if (typeof value === "number" && Number.isInteger(value) && value >= 0 && value < TWO_POW_32) {
    let v = value;
    while (v >= 0x80) {
      out.push((v & 0x7f) | 0x80);
      v = Math.floor(v / 128);
    }
    out.push(v);
    return;
  }
  if (typeof value === "number" && !Number.isSafeInteger(value)) {
    throw new RangeError(`protobuf varint: ${value} is not a safe integer`);
  }
  // Negative int32/int64 values are sign-extended to 64 bits (10 bytes), as protobuf requires.
  let v = BigInt.asUintN(64, BigInt(value));
  while (v >= 0x80n) {
    out.push(Number(v & 0x7fn) | 0x80);
    v >>= 7n;
  }
  out.push(Number(v));
}

/** Builds one message field by field. Small fields collect in a scratch list; payloads stay parts. */
export class MessageWriter {
  private readonly parts: Part[] = [];
  private pending: number[] = [];
  private total = 0;

  private flush(): void {
    if (!this.pending.length) return;
    this.parts.push(Uint8Array.from(this.pending));
    this.pending = [];
  }

  private tag(field: number, wire: number): void {
    if (!Number.isInteger(field) || field < 1 || field > 0x1fffffff) throw new RangeError(`protobuf field number ${field} is out of range`);
    const before = this.pending.length;
    pushVarint(this.pending, field * 8 + wire);
    this.total += this.pending.length - before;
  }

  private varint(value: number | bigint): void {
    const before = this.pending.length;
    pushVarint(this.pending, value);
    this.total += this.pending.length - before;
  }

  private part(p: Part): void {
    if (p.length === 0) return;
    if (p instanceof Uint8Array && p.length <= 64) {
      for (let i = 0; i < p.length; i++) this.pending.push(p[i]);
    } else {
      this.flush();
      this.parts.push(p);
    }
    this.total += p.length;
  }

  /** int32, int64, uint64, bool and enum fields (negative values take 10 bytes). */
  int(field: number, value: number | bigint): this {
    this.tag(field, VARINT);
    this.varint(value);
    return this;
  }

  /** A float field (fixed32, little-endian). */
  float(field: number, value: number): this {
    this.tag(field, FIXED32);
    const b = new Uint8Array(4);
    new DataView(b.buffer).setFloat32(0, value, true);
    this.part(b);
    return this;
  }

  /** A string field (UTF-8). */
  string(field: number, value: string): this {
    return this.bytes(field, new TextEncoder().encode(value));
  }

  /** A bytes field; a `LazyBytes` is produced only when the message is written out. */
  bytes(field: number, value: Part): this {
    this.tag(field, LENGTH_DELIMITED);
    this.varint(value.length);
    this.part(value);
    return this;
  }

  /** An embedded message. */
  message(field: number, value: Encoded): this {
    this.tag(field, LENGTH_DELIMITED);
    this.varint(value.length);
    for (const p of value.parts) this.part(p);
    return this;
  }

  /** A packed repeated int64 / int32 field. */
  packedInts(field: number, values: readonly (number | bigint)[]): this {
    if (!values.length) return this;
    const body: number[] = [];
    for (const v of values) pushVarint(body, v);
    return this.bytes(field, Uint8Array.from(body));
  }

  /** A packed repeated float field. */
  packedFloats(field: number, values: readonly number[]): this {
    if (!values.length) return this;
    const body = new Uint8Array(values.length * 4);
    const view = new DataView(body.buffer);
    values.forEach((v, i) => view.setFloat32(i * 4, v, true));
    return this.bytes(field, body);
  }

  finish(): Encoded {
    this.flush();
    return { parts: this.parts.slice(), length: this.total };
  }
}

/** The bytes of a part (a lazy part is produced now). */
export function partBytes(p: Part): Uint8Array {
  if (p instanceof Uint8Array) return p;
  const bytes = p.produce();
  if (bytes.length !== p.length) throw new Error(`protobuf: a lazy part produced ${bytes.length} bytes, announced ${p.length}`);
  return bytes;
}

/** The whole message in one buffer (lazy parts produced one at a time, copied once). */
export function toBytes(message: Encoded): Uint8Array {
  const out = new Uint8Array(message.length);
  let offset = 0;
  for (const p of message.parts) {
    out.set(partBytes(p), offset);
    offset += p.length;
  }
  return out;
}

/** One field as read back: varints as bigint, fixed32 as its raw 4 bytes, length-delimited as a view. */
export interface WireField {
  field: number;
  wire: number;
  varint?: bigint;
  bytes?: Uint8Array;
}

function readVarint(buf: Uint8Array, pos: { i: number }): bigint {
  let result = 0n;
  let shift = 0n;
  for (;;) {
    if (pos.i >= buf.length) throw new RangeError(`protobuf: varint runs past the end of the message at byte ${pos.i}`);
    const b = buf[pos.i++];
    result |= BigInt(b & 0x7f) << shift;
    if (b < 0x80) return result;
    shift += 7n;
    if (shift > 63n) throw new RangeError(`protobuf: varint longer than 10 bytes at byte ${pos.i}`);
  }
}

/** The fields of one message in order (no schema: the caller knows what each number means). */
export function readFields(buf: Uint8Array): WireField[] {
  const fields: WireField[] = [];
  const pos = { i: 0 };
  while (pos.i < buf.length) {
    const key = readVarint(buf, pos);
    const field = Number(key >> 3n);
    const wire = Number(key & 7n);
    if (wire === VARINT) fields.push({ field, wire, varint: readVarint(buf, pos) });
    else if (wire === LENGTH_DELIMITED || wire === FIXED32 || wire === FIXED64) {
      const n = wire === LENGTH_DELIMITED ? Number(readVarint(buf, pos)) : wire === FIXED32 ? 4 : 8;
      if (pos.i + n > buf.length) throw new RangeError(`protobuf: field ${field} (${n} bytes) runs past the end of the message`);
      fields.push({ field, wire, bytes: buf.subarray(pos.i, pos.i + n) });
      pos.i += n;
    } else {
      throw new RangeError(`protobuf: unsupported wire type ${wire} for field ${field} at byte ${pos.i}`);
    }
  }
  return fields;
}

/** Decodes a packed repeated varint field's bytes. */
export function readPackedVarints(bytes: Uint8Array): bigint[] {
  const out: bigint[] = [];
  const pos = { i: 0 };
  while (pos.i < bytes.length) out.push(readVarint(bytes, pos));
  return out;
}

/** A signed 64-bit value from a varint (int64 fields). */
export function asInt64(v: bigint): bigint {
  return BigInt.asIntN(64, v);
}
