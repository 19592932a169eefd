/**
 * The fan-out rules of contract.md section 2b, as pure logic: which documents of which index a
 * change to each table touches, directly or through a resolution query.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { planFanOut, type TableChange } from '../../src/capture/fanOut.js';
import { keysOf, parseNotification } from '../../src/capture/notification.js';
import { KINDS, memberOf, parseMember } from '../../src/kinds/kinds.js';

const F = '11111111-1111-4111-8111-111111111111';
const P = '22222222-2222-4222-8222-222222222222';
const G = '33333333-3333-4333-8333-333333333333';

const plan = (change: TableChange) => {
  const { members, resolutions } = planFanOut(change, KINDS);
  return {
    members: members.sort(),
    resolve: resolutions.map((r) => `${r.kind.name} via ${r.touch.via.after.name}`).sort(),
  };
};

describe('fan-out', () => {
  it('a film row: its own document now, its people through a query', () => {
    assert.deepEqual(plan({ table: 'film_work', keys: { film: [F] } }), {
      members: [F],
      resolve: ['persons via persons_of_films'],
    });
    // A deleted one's links go with it (the link table reports them). An insert is resolved: a
    // film replaced under its id keeps its links (test/capture/deferredKeys.test.ts).
    assert.deepEqual(plan({ table: 'film_work', keys: { film: [F] }, op: 'D' }).resolve, []);
    assert.deepEqual(plan({ table: 'film_work', keys: { film: [F] }, op: 'I' }).resolve, [
      'persons via persons_of_films',
    ]);
  });

  it("a person row: its own document, and on a rename its films' documents", () => {
    assert.deepEqual(plan({ table: 'person', keys: { person: [P] }, op: 'U' }), {
      members: [memberOf('persons', P)],
      resolve: ['films via films_of_persons'],
    });
    assert.deepEqual(plan({ table: 'person', keys: { person: [P] }, op: 'D' }).resolve, []);
  });

  it('a genre row: its own document, and its films through a query', () => {
    assert.deepEqual(plan({ table: 'genre', keys: { genre: [G] } }), {
      members: [memberOf('genres', G)],
      resolve: ['films via films_of_genres'],
    });
  });

  it('a link reaches both sides directly, never the whole other side', () => {
    assert.deepEqual(plan({ table: 'person_film_work', keys: { film: [F], person: [P] } }), {
      members: [F, `persons/${P}`].sort(),
      resolve: [],
    });
    assert.deepEqual(plan({ table: 'genre_film_work', keys: { film: [F], genre: [G] } }), {
      members: [F, `genres/${G}`].sort(),
      resolve: [],
    });
  });

  it('tombstones reach the document of their own index only', () => {
    assert.deepEqual(plan({ table: 'film_tombstone', keys: { film: [F] } }).members, [F]);
    assert.deepEqual(plan({ table: 'person_tombstone', keys: { person: [P] } }).members, [
      `persons/${P}`,
    ]);
    assert.deepEqual(plan({ table: 'genre_tombstone', keys: { genre: [G] } }).members, [
      `genres/${G}`,
    ]);
  });

  it('a link notification as migration 0004 sends it names both sides', () => {
    const result = parseNotification(
      JSON.stringify({ t: 'person_film_work', op: 'I', films: [F], persons: [P], x: '7' }),
    );
    assert.ok(result.ok);
    assert.deepEqual(keysOf(result.change), { film: [F], person: [P] });
    // From triggers older than 0004: only the films, and still accepted.
    const old = parseNotification(JSON.stringify({ t: 'genre_film_work', op: 'D', films: [F] }));
    assert.ok(old.ok);
    assert.deepEqual(keysOf(old.change), { film: [F] });
  });

  it('queue members name their kind; a film id stays as it is', () => {
    assert.equal(memberOf('films', F), F);
    assert.equal(parseMember(F)?.kind.name, 'films');
    assert.deepEqual(
      [parseMember(`persons/${P}`)?.kind.name, parseMember(`persons/${P}`)?.id],
      ['persons', P],
    );
    assert.equal(parseMember(`films/${F}`), null, 'films are never prefixed');
    assert.equal(parseMember(`directors/${P}`), null);
  });
});
