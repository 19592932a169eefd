/**
 * `npm run dead-letters`: films Elasticsearch refused for good, with the reason.
 * `-- --retry` puts them all back in the queue (after the cause is fixed); `-- --json` for machines.
 */
import { loadConfigOrExit } from '../config.js';
import { createStderrLogger } from '../logger.js';
import { type DeadLetter, DeadLetters } from '../queue/deadLetters.js';
import { DocumentQueue } from '../queue/documentQueue.js';
import { isUnreadableLetter, retryDueAt, UNREADABLE_RETRY } from '../queue/unreadableRetry.js';
import { RedisStore } from '../queue/redisStore.js';
import { parseOptionsOrExit } from './options.js';

/** A document PostgreSQL could not build is read again by itself a few times: say when. */
function retryNote(letter: DeadLetter): string {
  const failed = letter.tries;
  if (!isUnreadableLetter(letter) || failed === undefined) return '';
  const due = retryDueAt(letter, UNREADABLE_RETRY);
  const reads = `${failed} failed tr${failed === 1 ? 'y' : 'ies'}`;
  return due === null
    ? `  (${reads}; no more tries by itself)`
    : `  (${reads}; read again by itself from ${new Date(due).toISOString()})`;
}

const values = parseOptionsOrExit('dead-letters', {
  retry: { type: 'boolean', default: false },
  json: { type: 'boolean', default: false },
});
const config = loadConfigOrExit();
const store = new RedisStore(config.redisUrl, config.redisPrefix, createStderrLogger('warn'));
const deadLetters = new DeadLetters(store);
try {
  if (values.retry) {
    const count = await deadLetters.retry(new DocumentQueue(store));
    process.stdout.write(`${count} dead letter${count === 1 ? '' : 's'} queued again\n`);
  } else {
    const letters = await deadLetters.list();
    if (values.json) process.stdout.write(`${JSON.stringify(letters, null, 2)}\n`);
    else if (letters.length === 0) process.stdout.write('no dead letters\n');
    else {
      for (const l of letters)
        process.stdout.write(`${l.at}  ${l.id}  ${l.status}  ${l.reason}${retryNote(l)}\n`);
      process.stdout.write(
        `${letters.length} dead letters; fix the cause, then: npm run dead-letters -- --retry\n`,
      );
    }
  }
} catch (err) {
  process.stderr.write(`dead-letters: ${(err as Error).message}\n`);
  process.exitCode = 1;
} finally {
  await store.close();
}
