/**
 * The part of ONNX's protobuf schema a graph exporter needs (ModelProto, GraphProto, NodeProto,
 * AttributeProto, TensorProto with raw or external data, ValueInfoProto), as plain objects and
 * their wire encoding. Field numbers follow onnx/onnx.proto
 * (https://github.com/onnx/onnx/blob/main/onnx/onnx.proto); operators are specified in
 * https://github.com/onnx/onnx/blob/main/docs/Operators.md.
 */
import * as os from "node:os";
import { Encoded, LazyBytes, MessageWriter } from "./protobuf";

/** TensorProto.DataType numbers of the element types we write. */
export const ONNX_DTYPES = { float32: 1, uint8: 2, int8: 3, int32: 6, int64: 7, bool: 9, float16: 10, float64: 11 } as const;
export type TensorDType = "float32" | "int32" | "int64" | "int8";
export const DTYPE_BYTES: Record<TensorDType, number> = { float32: 4, int32: 4, int64: 8, int8: 1 };

export type TensorValues = Float32Array | Int32Array | BigInt64Array | Int8Array;

/** A named constant tensor (an initializer). */
export interface TensorData {
  name: string;
  dtype: TensorDType;
  dims: number[];
  /** The values (row-major), or a function that makes them when the tensor is written. */
  values: TensorValues | (() => TensorValues);
}

/** Where an initializer's bytes live when they are not inside the model file. */
export interface ExternalLocation {
  /** File name relative to the model file's directory. */
  location: string;
  offset: number;
  length: number;
}

export type AttributeValue =
  | { type: "int"; value: number }
  | { type: "float"; value: number }
  | { type: "ints"; value: number[] }
  | { type: "floats"; value: number[] }
  | { type: "string"; value: string };

export interface NodeDef {
  opType: string;
  inputs: string[];
  outputs: string[];
  name: string;
  attributes?: Record<string, AttributeValue>;
  /** Operator set domain; "" (the default) is the standard ai.onnx set. */
  domain?: string;
}

/** A graph input or output: element type and shape (numbers are fixed, strings are named dynamic dims). */
export interface ValueInfo {
  name: string;
  dtype: TensorDType;
  shape: (number | string)[];
}

export interface GraphDef {
  name: string;
  nodes: NodeDef[];
  initializers: TensorData[];
  inputs: ValueInfo[];
  outputs: ValueInfo[];
  docString?: string;
}

export interface ModelDef {
  irVersion: number;
  /** Version of the standard ai.onnx operator set the graph uses. */
  opsetVersion: number;
  producerName: string;
  producerVersion: string;
  graph: GraphDef;
  docString?: string;
  /** ModelProto.metadata_props. */
  metadata?: Record<string, string>;
}

export function numel(dims: readonly number[]): number {
  return dims.reduce((a, b) => a * b, 1);
}

/** Size of an initializer's data in bytes. */
export function tensorByteLength(t: TensorData): number {
  return numel(t.dims) * DTYPE_BYTES[t.dtype];
}

const LITTLE_ENDIAN = os.endianness() === "LE";

function expectedArray(dtype: TensorDType, values: TensorValues): boolean {
  if (dtype === "float32") return values instanceof Float32Array;
  if (dtype === "int32") return values instanceof Int32Array;
  if (dtype === "int8") return values instanceof Int8Array;
  return values instanceof BigInt64Array;
}

/** The tensor's values, checked against its dtype and dims. */
export function tensorValues(t: TensorData): TensorValues {
  const values = typeof t.values === "function" ? t.values() : t.values;
  if (!expectedArray(t.dtype, values)) throw new TypeError(`ONNX tensor ${t.name}: values must be a typed array of ${t.dtype}`);
  if (values.length !== numel(t.dims)) {
    throw new RangeError(`ONNX tensor ${t.name}: ${values.length} values for dims [${t.dims}] (expected ${numel(t.dims)})`);
  }
  return values;
}

/** The tensor's raw little-endian bytes, made when written. */
export function tensorBytes(t: TensorData): LazyBytes {
  if (!LITTLE_ENDIAN) throw new Error("ONNX export needs a little-endian machine (raw_data is little-endian)");
  return {
    length: tensorByteLength(t),
    produce: () => {
      const v = tensorValues(t);
      return new Uint8Array(v.buffer, v.byteOffset, v.byteLength);
    },
  };
}

function encodeStringEntry(key: string, value: string): Encoded {
  return new MessageWriter().string(1, key).string(2, value).finish();
}

/** TensorProto: dims 1, data_type 2, name 8, raw_data 9, external_data 13, data_location 14. */
export function encodeTensor(t: TensorData, external?: ExternalLocation): Encoded {
  const w = new MessageWriter().packedInts(1, t.dims).int(2, ONNX_DTYPES[t.dtype]).string(8, t.name);
  if (external) {
    w.message(13, encodeStringEntry("location", external.location));
    w.message(13, encodeStringEntry("offset", String(external.offset)));
    w.message(13, encodeStringEntry("length", String(external.length)));
    w.int(14, 1); // DataLocation.EXTERNAL
  } else {
    w.bytes(9, tensorBytes(t));
  }
  return w.finish();
}

/** AttributeProto: name 1, f 2, i 3, s 4, floats 7, ints 8, type 20. */
export function encodeAttribute(name: string, a: AttributeValue): Encoded {
  const w = new MessageWriter().string(1, name);
  switch (a.type) {
    case "float":
      return w.float(2, a.value).int(20, 1).finish();
    case "int":
      return w.int(3, a.value).int(20, 2).finish();
    case "string":
      return w.string(4, a.value).int(20, 3).finish();
    case "floats":
      return w.packedFloats(7, a.value).int(20, 6).finish();
    case "ints":
      return w.packedInts(8, a.value).int(20, 7).finish();
  }
}

/** NodeProto: input 1, output 2, name 3, op_type 4, attribute 5, domain 7. */
export function encodeNode(n: NodeDef): Encoded {
  const w = new MessageWriter();
  for (const i of n.inputs) w.string(1, i);
  for (const o of n.outputs) w.string(2, o);
  w.string(3, n.name).string(4, n.opType);
  for (const [k, v] of Object.entries(n.attributes ?? {})) w.message(5, encodeAttribute(k, v));
  if (n.domain) w.string(7, n.domain);
  return w.finish();
}

/** ValueInfoProto { name 1, type 2: TypeProto { tensor_type 1: { elem_type 1, shape 2: { dim 1: { dim_value 1 | dim_param 2 } } } } }. */
export function encodeValueInfo(v: ValueInfo): Encoded {
  const shape = new MessageWriter();
  for (const d of v.shape) {
    const dim = new MessageWriter();
    if (typeof d === "number") dim.int(1, d);
    else dim.string(2, d);
    shape.message(1, dim.finish());
  }
  const tensorType = new MessageWriter().int(1, ONNX_DTYPES[v.dtype]).message(2, shape.finish()).finish();
  const type = new MessageWriter().message(1, tensorType).finish();
  return new MessageWriter().string(1, v.name).message(2, type).finish();
}

/** GraphProto: node 1, name 2, initializer 5, doc_string 10, input 11, output 12. */
export function encodeGraph(g: GraphDef, external: ReadonlyMap<string, ExternalLocation> = new Map()): Encoded {
  const w = new MessageWriter();
  for (const n of g.nodes) w.message(1, encodeNode(n));
  w.string(2, g.name);
  for (const t of g.initializers) w.message(5, encodeTensor(t, external.get(t.name)));
  if (g.docString) w.string(10, g.docString);
  for (const i of g.inputs) w.message(11, encodeValueInfo(i));
  for (const o of g.outputs) w.message(12, encodeValueInfo(o));
  return w.finish();
}

/** ModelProto: ir_version 1, producer_name 2, producer_version 3, doc_string 6, graph 7, opset_import 8, metadata_props 14. */
export function encodeModel(m: ModelDef, external: ReadonlyMap<string, ExternalLocation> = new Map()): Encoded {
  const w = new MessageWriter().int(1, m.irVersion).string(2, m.producerName).string(3, m.producerVersion);
  if (m.docString) w.string(6, m.docString);
  w.message(7, encodeGraph(m.graph, external));
  w.message(8, new MessageWriter().string(1, "").int(2, m.opsetVersion).finish()); // OperatorSetIdProto { domain 1, version 2 }
  for (const [k, v] of Object.entries(m.metadata ?? {})) w.message(14, encodeStringEntry(k, v));
  return w.finish();
}
