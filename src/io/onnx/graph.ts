/**
 * A small builder for ONNX graphs: named inputs and outputs, initializers (weights made on
 * demand), deduplicated constants, and nodes whose outputs get unique names under a scope
 * (`/visual/transformer/resblocks.0/MatMul_3`), so a graph reads like the model it came from.
 */
import { AttributeValue, GraphDef, ModelDef, NodeDef, TensorData, TensorDType, TensorValues, ValueInfo } from "./onnx_proto";

/** Attribute constructors: ONNX distinguishes ints from floats, JavaScript numbers do not. */
export const attr = {
  int: (value: number): AttributeValue => ({ type: "int", value }),
  float: (value: number): AttributeValue => ({ type: "float", value }),
  ints: (value: number[]): AttributeValue => ({ type: "ints", value }),
  floats: (value: number[]): AttributeValue => ({ type: "floats", value }),
  string: (value: string): AttributeValue => ({ type: "string", value }),
};

export class GraphBuilder {
  private readonly nodes: NodeDef[] = [];
  private readonly initializers: TensorData[] = [];
  private readonly inputs: ValueInfo[] = [];
  private readonly outputs: ValueInfo[] = [];
  private readonly names = new Set<string>();
  private readonly constants = new Map<string, string>();
  private readonly counters = new Map<string, number>();
  private scopes: string[] = [];

  constructor(readonly name: string) {}

  private claim(name: string): string {
    if (this.names.has(name)) throw new Error(`ONNX graph ${this.name}: the name ${name} is used twice`);
    this.names.add(name);
    return name;
  }

  /** Runs `fn` with names prefixed by `scope` (nested scopes join with "/"). */
  scope<T>(scope: string, fn: () => T): T {
    this.scopes.push(scope);
    try {
      return fn();
    } finally {
      this.scopes.pop();
    }
  }

  input(name: string, dtype: TensorDType, shape: (number | string)[]): string {
    this.inputs.push({ name: this.claim(name), dtype, shape });
    return name;
  }

  /** Declares `value` (a node output) as a graph output named `name` (an Identity when they differ). */
  output(value: string, name: string, dtype: TensorDType, shape: (number | string)[]): void {
    if (value !== name) this.node("Identity", [value], {}, { output: name });
    this.outputs.push({ name, dtype, shape });
  }

  /** A weight; `values` may be a function so that the data is read only when the model is written. */
  initializer(name: string, dtype: TensorDType, dims: number[], values: TensorData["values"]): string {
    this.initializers.push({ name: this.claim(name), dtype, dims: dims.slice(), values });
    return name;
  }

  /** A small constant, shared by every node that uses the same values. */
  constant(dtype: TensorDType, dims: number[], values: number[]): string {
    const key = `${dtype}[${dims}]:${values.join(",")}`;
    const known = this.constants.get(key);
    if (known) return known;
    const data: TensorValues =
      dtype === "float32"
        ? Float32Array.from(values)
        : dtype === "int32"
          ? Int32Array.from(values)
          : dtype === "int8"
            ? Int8Array.from(values)
            : BigInt64Array.from(values.map((v) => BigInt(v)));
    const name = this.initializer(`const_${this.constants.size}_${dtype}`, dtype, dims, data);
    this.constants.set(key, name);
    return name;
  }

  /** A 1-D int64 constant (shapes, axes, indices). */
  ints(values: number[]): string {
    return this.constant("int64", [values.length], values);
  }

  /** A scalar float constant. */
  scalar(value: number): string {
    return this.constant("float32", [], [value]);
  }

  /** Adds a node and returns its first output's name. */
  node(opType: string, inputs: string[], attributes: Record<string, AttributeValue> = {}, opts: { output?: string } = {}): string {
    return this.nodeN(opType, inputs, 1, attributes, opts.output ? [opts.output] : undefined)[0];
  }

  /** Adds a node with `outputs` outputs and returns their names. */
  nodeN(opType: string, inputs: string[], outputs: number, attributes: Record<string, AttributeValue> = {}, names?: string[]): string[] {
    const count = (this.counters.get(opType) ?? 0) + 1;
    this.counters.set(opType, count);
    const prefix = this.scopes.length ? `/${this.scopes.join("/")}/` : "/";
    const nodeName = this.claim(`${prefix}${opType}_${count}`);
    const outs = names ?? Array.from({ length: outputs }, (_, i) => `${nodeName}_output_${i}`);
    for (const o of outs) this.claim(o);
    this.nodes.push({ opType, inputs, outputs: outs, name: nodeName, attributes });
    return outs;
  }

  build(): GraphDef {
    if (!this.outputs.length) throw new Error(`ONNX graph ${this.name} has no outputs`);
    return {
      name: this.name,
      nodes: this.nodes.slice(),
      initializers: this.initializers.slice(),
      inputs: this.inputs.slice(),
      outputs: this.outputs.slice(),
    };
  }
}

/** ONNX IR version 8 goes with opset 17 (onnx 1.12), the newest pair onnxruntime 1.14+ reads. */
export const OPSET_VERSION = 17;
export const IR_VERSION = 8;

export function modelOf(graph: GraphDef, fields: { producerVersion: string; docString?: string; metadata?: Record<string, string> }): ModelDef {
  return {
    irVersion: IR_VERSION,
    opsetVersion: OPSET_VERSION,
    producerName: "cliplab",
    producerVersion: fields.producerVersion,
    graph,
    docString: fields.docString,
    metadata: fields.metadata,
  };
}
