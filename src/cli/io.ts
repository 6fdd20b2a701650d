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
