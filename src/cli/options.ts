/**
 * Command-line options for the CLIs: node's parseArgs, strict, with a mistake (an unknown option,
 * a missing value) reported as one line naming the command, and exit status 2, as for any bad
 * configuration; never a stack trace.
 */
import { parseArgs, type ParseArgsConfig } from 'node:util';

export function parseOptionsOrExit<T extends NonNullable<ParseArgsConfig['options']>>(
  command: string,
  options: T,
): ReturnType<typeof parseArgs<{ options: T }>>['values'] {
  try {
    return parseArgs({ options }).values;
  } catch (err) {
    process.stderr.write(`${command}: ${(err as Error).message}\n`);
    process.exit(2);
  }
}
