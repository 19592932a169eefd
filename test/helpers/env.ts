/**
 * Where the tests find the real services: the same variables and defaults as the program, so a
 * developer who points the syncer somewhere points the tests there too.
 */
import { parseConfig, readEnvironment, type Config } from '../../src/config.js';

export function baseConfig(): Config {
  const result = parseConfig(readEnvironment());
  if (!result.ok) throw new Error(`test environment is invalid: ${result.problems.join('; ')}`);
  return result.config;
}
