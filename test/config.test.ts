import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { parseConfig, readEnvironment, redactUrl, splitUrls } from '../src/config.js';

describe('configuration', () => {
  it('applies the documented defaults to an empty environment', () => {
    const result = parseConfig({});
    assert.ok(result.ok);
    const { config } = result;
    assert.equal(config.databaseUrl, 'postgres://postgres@127.0.0.1:5432/movies');
    assert.equal(config.redisUrl, 'redis://127.0.0.1:6379/0');
    assert.equal(config.elasticsearch.url, 'http://127.0.0.1:9200');
    assert.equal(config.index, 'movies');
    assert.equal(config.redisPrefix, 'movies_etl:');
    assert.equal(config.sizeLimit, 200);
    assert.equal(config.bulkSize, 200);
    assert.equal(config.logLevel, 'info');
    assert.equal(config.metricsPort, 9464);
    assert.ok(config.sleepMs >= 0 && config.sleepMs < 1000);
    assert.ok(config.pollIntervalMs >= 1000 && config.pollIntervalMs <= 10_000);
  });

  it('reads and converts every variable', () => {
    const result = parseConfig({
      DATABASE_URL: 'postgresql://etl:secret@db.internal:6543/catalog?sslmode=require',
      REDIS_URL: 'rediss://:pw@cache:6380/2',
      ELASTICSEARCH_URL: 'https://search:9243',
      ES_INDEX: 'movies-v2',
      REDIS_PREFIX: '{cinema}:',
      ETL_SIZE_LIMIT: '500',
      ETL_BULK_SIZE: '1000',
      ETL_SLEEP_MS: '0',
      ETL_POLL_INTERVAL_MS: '2500',
      ETL_REFRESH_MS: '0',
      LOG_LEVEL: 'debug',
      METRICS_PORT: '0',
    });
    assert.ok(result.ok);
    assert.equal(result.config.sizeLimit, 500);
    assert.equal(result.config.bulkSize, 1000);
    assert.equal(result.config.sleepMs, 0);
    assert.equal(result.config.pollIntervalMs, 2500);
    assert.equal(result.config.refreshMs, 0);
    assert.equal(result.config.metricsPort, 0);
    assert.equal(result.config.redisPrefix, '{cinema}:');
    assert.equal(result.config.index, 'movies-v2');
  });

  it('treats an empty variable as unset', () => {
    const result = parseConfig({ ETL_SIZE_LIMIT: '', LOG_LEVEL: '  ' });
    assert.ok(result.ok);
    assert.equal(result.config.sizeLimit, 200);
    assert.equal(result.config.logLevel, 'info');
  });

  // From an outside test: an empty variable hid `.env`'s value and fell back to the default.
  it("lets .env's value show through a variable set empty", () => {
    const dir = mkdtempSync(join(tmpdir(), 'movies-etl-env-'));
    try {
      const file = join(dir, '.env');
      writeFileSync(file, 'ES_INDEX=from_dotenv\nETL_WORKERS=3\n');
      const env = readEnvironment(file, { ES_INDEX: '', ETL_WORKERS: '5' });
      const result = parseConfig(env);
      assert.ok(result.ok);
      assert.equal(result.config.index, 'from_dotenv');
      assert.equal(result.config.workers, 5, 'a variable set wins over .env');
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  // From an outside test: `/abc` went to the server as it was (a stack trace at start).
  it('takes a Redis database only by its number', () => {
    assert.ok(parseConfig({ REDIS_URL: 'redis://cache:6379/3' }).ok);
    assert.ok(parseConfig({ REDIS_URL: 'redis://cache:6379/' }).ok);
    const bad = parseConfig({ REDIS_URL: 'redis://:hunter2@cache:6379/abc' });
    assert.ok(!bad.ok);
    assert.match(bad.problems.join('\n'), /REDIS_URL names a database that is not a number/);
    assert.doesNotMatch(bad.problems.join('\n'), /hunter2/);
  });

  it('names every bad variable at once', () => {
    const result = parseConfig({
      DATABASE_URL: 'mysql://localhost/movies',
      REDIS_URL: 'not a url',
      ELASTICSEARCH_URL: 'ftp://es',
      ES_INDEX: 'Movies Index',
      ETL_SIZE_LIMIT: 'abc',
      ETL_BULK_SIZE: '-5',
      ETL_SLEEP_MS: '1.5',
      ETL_POLL_INTERVAL_MS: '10',
      ETL_REFRESH_MS: '-1',
      LOG_LEVEL: 'loud',
      METRICS_PORT: '70000',
    });
    assert.ok(!result.ok);
    const named = result.problems.map((p) => p.split(' ')[0]);
    assert.deepEqual(
      new Set(named),
      new Set([
        'DATABASE_URL',
        'REDIS_URL',
        'ELASTICSEARCH_URL',
        'ES_INDEX',
        'ETL_SIZE_LIMIT',
        'ETL_BULK_SIZE',
        'ETL_SLEEP_MS',
        'ETL_POLL_INTERVAL_MS',
        'ETL_REFRESH_MS',
        'LOG_LEVEL',
        'METRICS_PORT',
      ]),
    );
    assert.match(result.problems.join('\n'), /ETL_SIZE_LIMIT must be a whole number/);
    assert.match(result.problems.join('\n'), /ETL_BULK_SIZE must be at least 1/);
  });

  it('never echoes a URL, which may carry a password', () => {
    const result = parseConfig({ DATABASE_URL: 'mysql://u:hunter2@h/db' });
    assert.ok(!result.ok);
    assert.doesNotMatch(result.problems.join('\n'), /hunter2/);
  });

  it('checks rules across variables', () => {
    const result = parseConfig({ ELASTICSEARCH_USERNAME: 'elastic' });
    assert.ok(!result.ok);
    assert.match(result.problems.join('\n'), /ELASTICSEARCH_PASSWORD must be set/);
    const alone = parseConfig({ ELASTICSEARCH_PASSWORD: 'secret' });
    assert.ok(!alone.ok);
    assert.match(alone.problems.join('\n'), /ELASTICSEARCH_USERNAME must be set/);
  });

  // Outside reading: a bad variable hid the rules across variables, so a user fixed one problem
  // and met the next at the following start.
  it('names a bad variable and a broken rule across variables at once', () => {
    const result = parseConfig({
      ETL_BULK_SIZE: '0',
      ES_PERSONS_INDEX: 'movies',
      ELASTICSEARCH_USERNAME: 'elastic',
    });
    assert.ok(!result.ok);
    const problems = result.problems.join('\n');
    assert.match(problems, /ETL_BULK_SIZE must be at least 1/);
    assert.match(
      problems,
      /ES_INDEX, ES_PERSONS_INDEX and ES_GENRES_INDEX must be three different/,
    );
    assert.match(problems, /ELASTICSEARCH_PASSWORD must be set/);
  });

  // Outside reading: ES_GENRES_INDEX=movies_v1 beside ES_INDEX=movies was accepted. The films
  // alias was put on movies_v1, the genres took that index for their own and widened its mapping,
  // and each kind's orphan sweep then deleted the other's documents: no film left searchable.
  it('refuses an index name the syncer gives indices of another setting', () => {
    for (const [env, setting] of [
      [{ ES_GENRES_INDEX: 'movies_v1' }, 'ES_GENRES_INDEX'],
      [{ ES_INDEX: 'films', ES_PERSONS_INDEX: 'films_20261207031500' }, 'ES_PERSONS_INDEX'],
      [{ ES_PERSONS_INDEX: 'genres-reindex-20261207031500' }, 'ES_PERSONS_INDEX'],
    ] as const) {
      const result = parseConfig(env);
      assert.ok(!result.ok, JSON.stringify(env));
      assert.equal(result.problems.length, 1, result.problems.join('\n'));
      assert.match(result.problems[0] ?? '', new RegExp(`^${setting} \\(`));
    }
    for (const env of [
      { ES_GENRES_INDEX: 'movies_genres' },
      { ES_GENRES_INDEX: 'movies_v1x' },
      { ES_PERSONS_INDEX: 'movies_2026' },
    ]) {
      const result = parseConfig(env);
      assert.ok(result.ok, JSON.stringify(env));
    }
  });

  it('redacts passwords from URLs', () => {
    assert.equal(
      redactUrl('postgres://etl:secret@db:5432/movies'),
      'postgres://etl:***@db:5432/movies',
    );
    assert.equal(redactUrl('redis://127.0.0.1:6379/0'), 'redis://127.0.0.1:6379/0');
  });

  it('takes Sentinels and Redis Cluster in REDIS_URL, and says what is wrong with them', () => {
    const sentinel = parseConfig({ REDIS_URL: 'redis+sentinel://:pw@s1:26379,s2:26380/movies/2' });
    assert.ok(sentinel.ok);
    const cluster = parseConfig({
      REDIS_URL: 'redis+cluster://n1:7000,n2:7001',
      REDIS_PREFIX: '{movies_etl}:',
    });
    assert.ok(cluster.ok);
    const bad = parseConfig({
      REDIS_URL: 'redis+sentinel://:hunter2@s1:26379',
      ES_INDEX: 'Bad Index',
    });
    assert.ok(!bad.ok);
    assert.match(bad.problems.join('\n'), /REDIS_URL must name the master/);
    assert.match(bad.problems.join('\n'), /ES_INDEX/);
    assert.doesNotMatch(bad.problems.join('\n'), /hunter2/);
    const untagged = parseConfig({ REDIS_URL: 'redis+cluster://n1:7000' });
    assert.ok(!untagged.ok);
    assert.match(untagged.problems.join('\n'), /REDIS_PREFIX must carry a hash tag/);
    assert.equal(
      redactUrl('redis+sentinel://etl:secret@s1:26379,s2:26379/movies'),
      'redis+sentinel://etl:***@s1:26379,s2:26379/movies',
    );
  });

  it('keeps an index name short enough for the names a reindex derives from it', () => {
    // A reindex names its new index `<alias>_<14 digits>` and its write alias
    // `<alias>-reindex-<14 digits>`; Elasticsearch refuses names over 255 bytes.
    const longest = 'm'.repeat(255 - '-reindex-20261207001500'.length);
    assert.ok(parseConfig({ ES_INDEX: longest, ES_GENRES_INDEX: `${longest.slice(1)}g` }).ok);
    const tooLong = parseConfig({ ES_INDEX: `${longest}s`, ES_PERSONS_INDEX: `p${longest}` });
    assert.ok(!tooLong.ok);
    const named = tooLong.problems.map((p) => p.split(' ')[0]);
    assert.deepEqual(named.sort(), ['ES_INDEX', 'ES_PERSONS_INDEX']);
    assert.match(tooLong.problems.join('\n'), /at most 232 bytes/);
    // Counted in bytes, as Elasticsearch counts: 117 two-byte letters are 234.
    assert.ok(!parseConfig({ ES_INDEX: 'ж'.repeat(117) }).ok);
  });

  it('takes every index name Elasticsearch takes, and refuses the others, saying why', () => {
    for (const name of ['movies+ru', 'movies@prod', 'кино', 'movies.v2', 'a_b-c'])
      assert.ok(parseConfig({ ES_INDEX: name }).ok, name);
    for (const [name, why] of [
      ['Movies', /lowercase/],
      ['_movies', /must not start with/],
      ['-movies', /must not start with/],
      ['+movies', /must not start with/],
      ['.movies', /must not start with/],
      ['a,b', /must not contain/],
      ['a b', /must not contain/],
      ['a#b', /must not contain/],
      ['a:b', /must not contain/],
      ['a*b', /must not contain/],
    ] as const) {
      const parsed = parseConfig({ ES_INDEX: name });
      assert.ok(!parsed.ok, name);
      assert.match(parsed.problems.join('\n'), why, name);
    }
  });

  it('takes a PostgreSQL URL that names a Unix socket directory instead of a host', () => {
    // libpq's and node-postgres's form: no host in the authority, the socket's directory in `host`.
    const socket = 'postgresql://postgres@/movies?host=/var/run/postgresql';
    const parsed = parseConfig({ DATABASE_URL: socket, DATABASE_LISTEN_URL: socket });
    assert.ok(parsed.ok, parsed.ok ? '' : parsed.problems.join('; '));
    const noHost = parseConfig({ DATABASE_URL: 'postgresql://postgres@/movies' });
    assert.ok(!noHost.ok);
    assert.match(noHost.problems.join('\n'), /DATABASE_URL has no host/);
    const relative = parseConfig({ DATABASE_URL: 'postgresql:///movies?host=run/pg' });
    assert.ok(!relative.ok);
    assert.match(relative.problems.join('\n'), /DATABASE_URL has no host/);
  });

  it('takes several Elasticsearch nodes in ELASTICSEARCH_URL, and checks each', () => {
    const two = parseConfig({ ELASTICSEARCH_URL: 'http://es1:9200, https://u:pw@es2:9243' });
    assert.ok(two.ok);
    assert.deepEqual(splitUrls(two.config.elasticsearch.url), [
      'http://es1:9200',
      'https://u:pw@es2:9243',
    ]);
    assert.equal(
      redactUrl(two.config.elasticsearch.url),
      'http://es1:9200/,https://u:***@es2:9243/',
    );
    assert.deepEqual(splitUrls('redis+sentinel://s1:26379,s2:26379/m'), [
      'redis+sentinel://s1:26379,s2:26379/m',
    ]);
    const bad = parseConfig({ ELASTICSEARCH_URL: 'http://es1:9200,ftp://:hunter2@es2' });
    assert.ok(!bad.ok);
    assert.match(
      bad.problems.join('\n'),
      /ELASTICSEARCH_URL must start with http:\/\/ or https:\/\//,
    );
    assert.doesNotMatch(bad.problems.join('\n'), /hunter2/);
  });
});
