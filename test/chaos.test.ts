/**
 * A short, fixed-seed chaos campaign (chaos/campaign.ts) as part of the suite: two rounds of
 * random faults against real syncer processes under a random editing workload, each of which must
 * end with the index equal to the documents computed from Postgres and nothing stranded in Redis.
 *
 * A failure prints the seed, the round and its plan, and the command that replays it; a long
 * campaign is `npm run chaos -- --minutes 60` (README, "Chaos campaign"). The seed is fixed so
 * the plan is the same on every run; the timing of real processes is not, so this is a smoke
 * test of the guarantees under faults, not a deterministic one.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { runCampaign } from '../chaos/campaign.js';
import { createLogger } from '../src/logger.js';

describe('chaos campaign (seed 1, two rounds)', () => {
  it('converges after every round, with nothing left behind', { timeout: 320_000 }, async () => {
    const reports: string[] = [];
    const summary = await runCampaign({
      seed: 1,
      rounds: 2,
      minutes: 3,
      roundSeconds: 25,
      syncers: 2,
      // A round that kills a syncer while it holds the read lock waits out its lease, then the
      // backlog: 33–74 s alone on this machine for round 2 with the 30 s lease of before 0.3,
      // more beside another test file.
      // The bound is for liveness (a loop, a stuck claim), not for speed.
      settleSeconds: 120,
      // Held by the proxy, not SIGSTOP: the suite runs files side by side, and stopping the
      // shared Elasticsearch would stall every other test too.
      esFreeze: 'proxy',
      log: createLogger((process.env.TEST_LOG_LEVEL as 'silent' | undefined) ?? 'silent', false),
      print: (text) => reports.push(text),
    });
    console.log(
      `# ${summary.rounds} rounds in ${Math.round(summary.elapsedMs / 1000)} s; ` +
        `settle median ${summary.settleMs.median} ms, max ${summary.settleMs.max} ms; ` +
        `${summary.workload.transactions} transactions, ${summary.workload.rows} rows`,
    );
    assert.equal(summary.rounds, 2, 'both rounds ran');
    assert.deepEqual(summary.failed, [], reports.join('\n'));
  });
});
