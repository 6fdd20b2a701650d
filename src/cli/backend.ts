/** Starts the compute backend for a CLI command and says which one runs, and why, on stderr. */
import { BackendChoice, initBackend } from "../backend";
import { CliIO } from "./io";

export async function startBackend(io: CliIO): Promise<BackendChoice> {
  const choice = await initBackend();
  const extras = choice.name === "wasm" ? ` (SIMD ${choice.simd ? "on" : "off"}, ${choice.threads} thread${choice.threads === 1 ? "" : "s"})` : "";
  io.err(`backend: ${choice.name}${extras}: ${choice.reason}`);
  return choice;
}
