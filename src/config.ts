/**
 * Environment -> typed, validated configuration. This is the only module that reads process.env.
 *
 * Every problem is reported at once, naming the variable, so an operator fixes a bad deployment in
 * one round instead of one variable per restart. Nothing here connects anywhere: a bad value must
 * stop the program before it touches PostgreSQL, Redis or Elasticsearch.
 */
import { existsSync, readFileSync } from 'node:fs';
import { parse as parseDotenv } from 'dotenv';
import { z } from 'zod';
import { isClusterUrl, parseRedisUrl } from './queue/redisClient.js';

const LOG_LEVELS = ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'] as const;

/** A URL whose scheme is one of `schemes`; the message never echoes the value (it may hold a password). */
function checkUrl(
  value: string,
  schemes: string[],
  ctx: z.RefinementCtx,
  { socket = false }: { socket?: boolean } = {},
): void {
  let parsed: URL;
  try {
    // `user@` with no host is what the drivers take for a socket, and no valid WHATWG URL: parse
    // it with an empty host instead, so the user's name does not make it "not a valid URL".
    parsed = new URL(socket ? value.replace(/^([a-z]+:\/\/)[^@/?#]*@\//i, '$1/') : value);
  } catch {
    ctx.addIssue({ code: 'custom', message: 'is not a valid URL' });
    return;
  }
  if (!schemes.includes(parsed.protocol.replace(/:$/, ''))) {
    ctx.addIssue({
      code: 'custom',
      message: `must start with ${schemes.map((s) => `${s}://`).join(' or ')}`,
    });
  }
  // PostgreSQL on the same machine: no host, the socket's directory in `host` (an absolute path).
  const socketDir = socket && parsed.searchParams.get('host')?.startsWith('/');
  if (!parsed.hostname && !socketDir) ctx.addIssue({ code: 'custom', message: 'has no host' });
}

/** `postgresql://user@host/db`, or `postgresql://user@/db?host=/run/postgresql` (a socket). */
const postgresUrl = z
  .string()
  .superRefine((value, ctx) => checkUrl(value, ['postgres', 'postgresql'], ctx, { socket: true }));

/** One Redis server, or Sentinels or Cluster nodes (src/queue/redisClient.ts). */
const redisUrl = z.string().superRefine((value, ctx) => {
  if (!/^redis\+(sentinel|cluster):/.test(value)) {
    checkUrl(value, ['redis', 'rediss', 'redis+sentinel', 'redis+cluster'], ctx);
    // The path names the database: anything but its number was sent to the server as it was
    // (a stack trace at start for `/abc`).
    const db = URL.canParse(value) ? new URL(value).pathname.replace(/^\//, '') : '';
    if (db !== '' && !/^\d+$/.test(db))
      ctx.addIssue({
        code: 'custom',
        message: 'names a database that is not a number (/0, /1, ...)',
      });
    return;
  }
  try {
    parseRedisUrl(value);
  } catch (err) {
    ctx.addIssue({ code: 'custom', message: (err as Error).message });
  }
});

/**
 * One Elasticsearch node, or several separated by commas (`http://es1:9200,http://es2:9200`): the
 * client spreads requests over them and leaves out one that stops answering, so losing a node of
 * a cluster does not cut the syncer off.
 */
const elasticsearchUrls = z.string().superRefine((value, ctx) => {
  for (const one of splitUrls(value)) checkUrl(one, ['http', 'https'], ctx);
});

/** `a,b` -> [a, b]; a comma splits only where a URL's scheme follows (a Sentinel list keeps its own). */
export function splitUrls(value: string): string[] {
  return value.split(/,(?=\s*[a-z][a-z0-9+.-]*:\/\/)/i).map((one) => one.trim());
}

/** A whole number in [min, max], written in decimal digits only ("1e3" and "12ms" are mistakes). */
const int = (min: number, max: number) =>
  z
    .string()
    .regex(/^-?\d+$/, 'must be a whole number')
    .transform(Number)
    .pipe(z.number().min(min, `must be at least ${min}`).max(max, `must be at most ${max}`));

/**
 * The longest name derived from an index setting: a reindex's write alias,
 * `<name>-reindex-<14 digits>` (src/load/reindexer.ts). Elasticsearch refuses names over 255
 * bytes, and a longer setting would let the syncer run for months and then fail its first reindex.
 */
const LONGEST_SUFFIX = '-reindex-'.length + 14;

/**
 * Whether `name` is one the syncer may give an index of the setting `base`: the first index behind
 * its alias (`<base>_v<n>`, src/load/indexManager.ts), a reindex's new index (`<base>_<14 digits>`)
 * or its write alias (`<base>-reindex-<14 digits>`, src/load/reindexer.ts). Another setting of such
 * a name finds that index already there and takes it for its own.
 */
function derivedFrom(base: string, name: string): boolean {
  if (!name.startsWith(base)) return false;
  return /^(_v\d+|_\d{14}|-reindex-\d{14})$/.test(name.slice(base.length));
}

/**
 * Elasticsearch's own rules for an index or alias name: lowercase; none of \ / * ? " < > | , # :
 * or a space; not starting with - _ + (nor ., which marks hidden and system indices); at most 255
 * bytes, less what a reindex adds.
 */
const indexName = z.string().superRefine((value, ctx) => {
  // One problem per setting, naming every rule it breaks.
  const broken: string[] = [];
  if (value !== value.toLowerCase()) broken.push('must be lowercase');
  if (/^[-_+.]/.test(value)) broken.push('must not start with "-", "_", "+" or "."');
  if (/[\\/*?"<>|,#: ]/.test(value))
    broken.push('must not contain \\ / * ? " < > | , # : or a space');
  const most = 255 - LONGEST_SUFFIX;
  if (Buffer.byteLength(value) > most)
    broken.push(`must be at most ${most} bytes (a reindex adds up to ${LONGEST_SUFFIX})`);
  if (broken.length > 0) ctx.addIssue({ code: 'custom', message: broken.join(', and ') });
});

const schema = z.object({
  DATABASE_URL: postgresUrl.default('postgres://postgres@127.0.0.1:5432/movies'),
  DATABASE_LISTEN_URL: postgresUrl.optional(),
  REDIS_URL: redisUrl.default('redis://127.0.0.1:6379/0'),
  ELASTICSEARCH_URL: elasticsearchUrls.default('http://127.0.0.1:9200'),
  ELASTICSEARCH_API_KEY: z.string().min(1).optional(),
  ELASTICSEARCH_USERNAME: z.string().min(1).optional(),
  ELASTICSEARCH_PASSWORD: z.string().min(1).optional(),
  ELASTICSEARCH_CA_CERT: z
    .string()
    .refine((path) => existsSync(path), 'names a file that does not exist')
    .optional(),
  ES_INDEX: indexName.default('movies'),
  ES_PERSONS_INDEX: indexName.default('persons'),
  ES_GENRES_INDEX: indexName.default('genres'),
  REDIS_PREFIX: z
    .string()
    .min(1, 'must not be empty')
    .regex(/^\S+$/, 'must not contain spaces')
    .default('movies_etl:'),
  ETL_SIZE_LIMIT: int(1, 10_000).default(200),
  ETL_BULK_SIZE: int(1, 10_000).default(200),
  ETL_SLEEP_MS: int(0, 60_000).default(10),
  ETL_WORKERS: int(1, 16).default(6),
  ETL_POLL_INTERVAL_MS: int(100, 3_600_000).default(5_000),
  ETL_REFRESH_MS: int(0, 60_000).default(100),
  LOG_LEVEL: z
    .enum(LOG_LEVELS, { error: `must be one of ${LOG_LEVELS.join(', ')}` })
    .default('info'),
  METRICS_PORT: int(0, 65_535).default(9464),
});

type RawConfig = z.infer<typeof schema>;

export interface Config {
  databaseUrl: string;
  /** The listener's own connection: direct to Postgres even when DATABASE_URL goes through a pooler. */
  listenUrl: string;
  redisUrl: string;
  elasticsearch: {
    /** One node's URL, or several separated by commas (splitUrls). */
    url: string;
    apiKey: string | undefined;
    username: string | undefined;
    password: string | undefined;
    caCertPath: string | undefined;
  };
  /** The films index (or alias); contract.md section 2. */
  index: string;
  /** The persons and genres indices (or aliases); section 2b. */
  personsIndex: string;
  genresIndex: string;
  redisPrefix: string;
  sizeLimit: number;
  bulkSize: number;
  sleepMs: number;
  /** Indexing workers per process. */
  workers: number;
  pollIntervalMs: number;
  /** Least gap between explicit refreshes after live batches; 0: the index's own interval only. */
  refreshMs: number;
  logLevel: RawConfig['LOG_LEVEL'];
  metricsPort: number;
}

/**
 * The rules that tie variables together, on the values of those that parse on their own (a rule
 * whose variable does not is skipped: its own problem names it).
 */
function rulesAcross(input: Record<string, string>): string[] {
  const value = <K extends keyof RawConfig>(name: K): RawConfig[K] | undefined => {
    const parsed = schema.shape[name].safeParse(input[name]);
    return parsed.success ? (parsed.data as RawConfig[K]) : undefined;
  };
  const problems: string[] = [];
  if (value('ELASTICSEARCH_USERNAME') !== undefined && input.ELASTICSEARCH_PASSWORD === undefined) {
    problems.push('ELASTICSEARCH_PASSWORD must be set when ELASTICSEARCH_USERNAME is');
  }
  // Alone, the client would ignore it and the first request fail on authentication.
  if (input.ELASTICSEARCH_PASSWORD !== undefined && input.ELASTICSEARCH_USERNAME === undefined) {
    problems.push('ELASTICSEARCH_USERNAME must be set when ELASTICSEARCH_PASSWORD is');
  }
  if (
    value('ELASTICSEARCH_API_KEY') !== undefined &&
    value('ELASTICSEARCH_USERNAME') !== undefined
  ) {
    problems.push('ELASTICSEARCH_API_KEY and ELASTICSEARCH_USERNAME are exclusive: set one');
  }
  const indices = [value('ES_INDEX'), value('ES_PERSONS_INDEX'), value('ES_GENRES_INDEX')];
  const named = indices.filter((name) => name !== undefined);
  if (new Set(named).size < named.length) {
    problems.push(
      `ES_INDEX, ES_PERSONS_INDEX and ES_GENRES_INDEX must be three different names (${named.join(', ')})`,
    );
  }
  const settings = ['ES_INDEX', 'ES_PERSONS_INDEX', 'ES_GENRES_INDEX'] as const;
  for (const setting of settings) {
    const name = value(setting);
    if (name === undefined) continue;
    for (const other of settings) {
      const taken = value(other);
      if (other === setting || taken === undefined || !derivedFrom(taken, name)) continue;
      problems.push(
        `${setting} (${name}) is a name the syncer gives indices of ${other} (${taken}): ` +
          'the two indices would be one, each holding the other kind, and each load deleting them',
      );
    }
  }
  const redisUrl = value('REDIS_URL');
  const prefix = value('REDIS_PREFIX');
  if (
    redisUrl !== undefined &&
    prefix !== undefined &&
    isClusterUrl(redisUrl) &&
    !/\{[^{}]+\}/.test(prefix)
  ) {
    problems.push(
      `REDIS_PREFIX must carry a hash tag on Redis Cluster, e.g. {${prefix.replace(/:$/, '')}}: (each script's keys must share a slot)`,
    );
  }
  return problems;
}

export type ConfigResult = { ok: true; config: Config } | { ok: false; problems: string[] };

export const CONFIG_VARIABLES = Object.keys(schema.shape) as (keyof RawConfig)[];

/**
 * Validate an environment. An empty variable counts as unset, so `FOO=` in a .env file falls back
 * to the default instead of failing on an empty string.
 */
export function parseConfig(env: Record<string, string | undefined>): ConfigResult {
  const input: Record<string, string> = {};
  for (const name of CONFIG_VARIABLES) {
    const value = env[name];
    if (value !== undefined && value.trim() !== '') input[name] = value.trim();
  }
  const result = schema.safeParse(input);
  const problems = result.success
    ? []
    : result.error.issues.map(
        (issue) => `${issue.path.join('.') || '(environment)'} ${issue.message}`,
      );
  // Checked whether or not every variable parsed, on those that did: each start names every
  // problem, not one more after each fix.
  problems.push(...rulesAcross(input));
  if (!result.success || problems.length > 0) return { ok: false, problems };
  const raw = result.data;
  return {
    ok: true,
    config: {
      databaseUrl: raw.DATABASE_URL,
      listenUrl: raw.DATABASE_LISTEN_URL ?? raw.DATABASE_URL,
      redisUrl: raw.REDIS_URL,
      elasticsearch: {
        url: raw.ELASTICSEARCH_URL,
        apiKey: raw.ELASTICSEARCH_API_KEY,
        username: raw.ELASTICSEARCH_USERNAME,
        password: raw.ELASTICSEARCH_PASSWORD,
        caCertPath: raw.ELASTICSEARCH_CA_CERT,
      },
      index: raw.ES_INDEX,
      personsIndex: raw.ES_PERSONS_INDEX,
      genresIndex: raw.ES_GENRES_INDEX,
      redisPrefix: raw.REDIS_PREFIX,
      sizeLimit: raw.ETL_SIZE_LIMIT,
      bulkSize: raw.ETL_BULK_SIZE,
      sleepMs: raw.ETL_SLEEP_MS,
      workers: raw.ETL_WORKERS,
      pollIntervalMs: raw.ETL_POLL_INTERVAL_MS,
      refreshMs: raw.ETL_REFRESH_MS,
      logLevel: raw.LOG_LEVEL,
      metricsPort: raw.METRICS_PORT,
    },
  };
}

/**
 * The process environment with `.env` (from the working directory) underneath it. A variable set
 * empty counts as unset there too, so `.env`'s value shows through: a compose file's
 * `ES_INDEX: ${ES_INDEX}` with nothing exported used to hide it and write to the default index.
 */
export function readEnvironment(
  envFile = '.env',
  env: Record<string, string | undefined> = process.env,
): Record<string, string | undefined> {
  const fromFile = existsSync(envFile) ? parseDotenv(readFileSync(envFile)) : {};
  const set = Object.entries(env).filter(([, value]) => value !== undefined && value.trim() !== '');
  return { ...fromFile, ...Object.fromEntries(set) };
}

/** For commands: the config, or one message naming every bad variable and exit status 2. */
export function loadConfigOrExit(): Config {
  const result = parseConfig(readEnvironment());
  if (result.ok) return result.config;
  process.stderr.write(
    `Invalid configuration (${result.problems.length} problem${result.problems.length === 1 ? '' : 's'}):\n` +
      result.problems.map((p) => `  - ${p}\n`).join('') +
      'See the configuration table in README.md.\n',
  );
  process.exit(2);
}

/** A URL with its password replaced, for logs and status output. */
export function redactUrl(value: string): string {
  const several = splitUrls(value);
  if (several.length > 1) return several.map(redactUrl).join(',');
  try {
    const parsed = new URL(value);
    if (parsed.password) parsed.password = '***';
    return parsed.toString();
  } catch {
    // Several hosts (redis+sentinel://, redis+cluster://) are no WHATWG URL.
    return /^[a-z+]+:\/\//.test(value)
      ? value.replace(/^([a-z+]+:\/\/[^:@/]*:)[^@/]*@/, '$1***@')
      : '(unparsable URL)';
  }
}
