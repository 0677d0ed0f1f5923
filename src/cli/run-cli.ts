import { EnvError } from '../config/env';

/** Runs a command-line task: prints its lines, and on failure a one-line reason and exit code 1. */
export function runCli(task: (log: (line: string) => void) => Promise<void>): void {
  const log = (line: string): void => console.log(line);
  task(log).then(
    () => process.exit(0),
    (err: unknown) => {
      console.error(err instanceof EnvError ? err.message : err);
      process.exit(1);
    },
  );
}
