/** Starts the compute backend for a CLI command and says which one runs, and why, on stderr. */
import { BackendChoice, initBackend } from "../backend/select";
import { CliIO } from "./io";

export async function startBackend(io: CliIO): Promise<BackendChoice> {
  const choice = await initBackend();
  const plural = (n: number) => `${n} thread${n === 1 ? "" : "s"}`;
  const matrix = choice.blas
    ? `matrix kernels ${choice.blas.name}, ${plural(choice.blas.threads)}; fused kernels ${choice.fused ? "on" : "off"}`
    : "matrix kernels wasm, no native BLAS";
  const extras = choice.name === "wasm" ? ` (SIMD ${choice.simd ? "on" : "off"}, ${plural(choice.threads)}; ${matrix})` : "";
  io.err(`backend: ${choice.name}${extras}: ${choice.reason}`);
  return choice;
}
