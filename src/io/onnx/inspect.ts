/**
 * Reads back the outline of an ONNX model file (no weights decoded): IR version, operator sets,
 * inputs and outputs with their shapes, the operators used, and where each initializer's data
 * lives. Enough to check an export without a runtime (field numbers as in onnx_proto.ts).
 */
import { WireField, asInt64, readFields, readPackedVarints } from "./protobuf";

export interface OnnxOutline {
  irVersion: number;
  producerName: string;
  opsets: { domain: string; version: number }[];
  graphName: string;
  inputs: { name: string; elemType: number; shape: (number | string)[] }[];
  outputs: { name: string; elemType: number; shape: (number | string)[] }[];
  nodes: { opType: string; domain: string; name: string; inputs: string[]; outputs: string[] }[];
  initializers: { name: string; dataType: number; dims: number[]; rawBytes?: number; external?: Record<string, string> }[];
  metadata: Record<string, string>;
}

const text = (b: Uint8Array | undefined) => (b ? new TextDecoder().decode(b) : "");
const sub = (fields: WireField[], n: number) => fields.filter((f) => f.field === n);
const first = (fields: WireField[], n: number) => fields.find((f) => f.field === n);
const num = (f: WireField | undefined) => (f?.varint === undefined ? 0 : Number(asInt64(f.varint)));

function ints(fields: WireField[], n: number): number[] {
  const out: number[] = [];
  for (const f of sub(fields, n)) {
    if (f.varint !== undefined) out.push(Number(asInt64(f.varint)));
    else if (f.bytes) out.push(...readPackedVarints(f.bytes).map((v) => Number(asInt64(v))));
  }
  return out;
}

function entries(fields: WireField[], n: number): Record<string, string> {
  const out: Record<string, string> = {};
  for (const f of sub(fields, n)) {
    const kv = readFields(f.bytes!);
    out[text(first(kv, 1)?.bytes)] = text(first(kv, 2)?.bytes);
  }
  return out;
}

function valueInfo(bytes: Uint8Array): OnnxOutline["inputs"][number] {
  const v = readFields(bytes);
  const tensorType = readFields(first(readFields(first(v, 2)?.bytes ?? new Uint8Array()), 1)?.bytes ?? new Uint8Array());
  const shape = readFields(first(tensorType, 2)?.bytes ?? new Uint8Array());
  return {
    name: text(first(v, 1)?.bytes),
    elemType: num(first(tensorType, 1)),
    shape: sub(shape, 1).map((d) => {
      const dim = readFields(d.bytes!);
      const param = first(dim, 2);
      return param ? text(param.bytes) : num(first(dim, 1));
    }),
  };
}

export function inspectOnnx(bytes: Uint8Array): OnnxOutline {
  const model = readFields(bytes);
  const graph = readFields(first(model, 7)?.bytes ?? new Uint8Array());
  return {
    irVersion: num(first(model, 1)),
    producerName: text(first(model, 2)?.bytes),
    opsets: sub(model, 8).map((f) => {
      const o = readFields(f.bytes!);
      return { domain: text(first(o, 1)?.bytes), version: num(first(o, 2)) };
    }),
    graphName: text(first(graph, 2)?.bytes),
    inputs: sub(graph, 11).map((f) => valueInfo(f.bytes!)),
    outputs: sub(graph, 12).map((f) => valueInfo(f.bytes!)),
    nodes: sub(graph, 1).map((f) => {
      const n = readFields(f.bytes!);
      return {
        opType: text(first(n, 4)?.bytes),
        domain: text(first(n, 7)?.bytes),
        name: text(first(n, 3)?.bytes),
        inputs: sub(n, 1).map((i) => text(i.bytes)),
        outputs: sub(n, 2).map((o) => text(o.bytes)),
      };
    }),
    initializers: sub(graph, 5).map((f) => {
      const t = readFields(f.bytes!);
      const raw = first(t, 9);
      const external = num(first(t, 14)) === 1 ? entries(t, 13) : undefined;
      return { name: text(first(t, 8)?.bytes), dataType: num(first(t, 2)), dims: ints(t, 1), rawBytes: raw?.bytes?.length, external };
    }),
    metadata: entries(model, 14),
  };
}
