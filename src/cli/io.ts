/** What the CLI writes to: real streams in the shell, buffers in tests (`main(argv, io)`). */
export interface CliIO {
  out(line: string): void;
  err(line: string): void;
}

export const processIO: CliIO = {
  out: (line) => process.stdout.write(line + "\n"),
  err: (line) => process.stderr.write(line + "\n"),
};

/** A usage mistake: exit code 2, like most Unix tools. */
export class UsageError extends Error {
  override name = "UsageError";
}

/** An integer option (`--name value`) of at least `min`, or undefined when absent; a UsageError otherwise. */
export function intOption(name: string, value: string | undefined, min = 1): number | undefined {
  if (value === undefined) return undefined;
  const n = Number(value);
  if (!Number.isInteger(n) || n < min) throw new UsageError(`--${name} must be an integer >= ${min}, got ${value}`);
  return n;
}
