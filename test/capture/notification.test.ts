/**
 * The messages on channel etl_changes: exactly what the triggers of migrations/0002 send is
 * accepted, and anything else is rejected with a short reason (the listener logs it and goes on).
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { parseNotification, type ChangeNotification } from '../../src/capture/notification.js';

const FILM = '3fa85f64-5717-4562-b3fc-2c963f66afa6';
const OTHER = 'C0FFEE00-0000-0000-0000-0000000000AB';

function accepted(payload: string): ChangeNotification {
  const result = parseNotification(payload);
  assert.ok(result.ok, `rejected ${payload}: ${result.ok ? '' : result.reason}`);
  return result.change;
}

function rejected(payload: string | undefined): string {
  const result = parseNotification(payload);
  assert.ok(!result.ok, `accepted ${String(payload).slice(0, 80)}`);
  assert.ok(result.reason.length > 0 && result.reason.length < 300, 'reason is short');
  return result.reason;
}

describe('change notifications', () => {
  describe('accepts what the triggers send', () => {
    it('changed rows of a main table, as json_build_object prints them', () => {
      const payload = `{"t" : "film_work", "op" : "U", "ids" : ["${FILM}","${OTHER}"]}`;
      assert.deepEqual(accepted(payload), { t: 'film_work', op: 'U', ids: [FILM, OTHER] });
    });

    it('inserted and deleted rows of genre and person', () => {
      assert.deepEqual(accepted(`{"t":"genre","op":"I","ids":["${FILM}"]}`), {
        t: 'genre',
        op: 'I',
        ids: [FILM],
      });
      assert.equal(accepted(`{"t":"person","op":"D","ids":["${FILM}"]}`).op, 'D');
    });

    it('the films of changed link rows', () => {
      assert.deepEqual(accepted(`{"t":"genre_film_work","op":"D","films":["${FILM}"]}`), {
        t: 'genre_film_work',
        op: 'D',
        films: [FILM],
      });
      assert.deepEqual(accepted(`{"t":"person_film_work","op":"I","films":["${OTHER}"]}`).films, [
        OTHER,
      ]);
    });

    it('too many rows to list', () => {
      assert.deepEqual(accepted('{"t":"person","op":"U","many":true}'), {
        t: 'person',
        op: 'U',
        many: true,
      });
    });

    it('a truncation, which carries no keys', () => {
      assert.deepEqual(accepted('{"t":"genre_film_work","op":"T"}'), {
        t: 'genre_film_work',
        op: 'T',
      });
    });

    it('the sending transaction, as migrations/0003 adds it', () => {
      const payload = `{"t" : "film_work", "op" : "U", "ids" : ["${FILM}"], "x" : "7651"}`;
      assert.equal(accepted(payload).x, '7651');
    });

    it('the largest key list a trigger sends (100 ids)', () => {
      const ids = Array.from({ length: 100 }, () => FILM);
      assert.equal(accepted(JSON.stringify({ t: 'film_work', op: 'U', ids })).ids?.length, 100);
    });
  });

  describe('rejects anything else, with a reason', () => {
    it('a transaction id that is not a number', () => {
      assert.match(
        rejected(`{"t":"film_work","op":"U","ids":["${FILM}"],"x":"12a"}`),
        /^unexpected payload: x /,
      );
    });

    it('an empty or missing payload', () => {
      assert.equal(rejected(''), 'empty payload');
      assert.equal(rejected(undefined), 'empty payload');
    });

    it('a payload that is not JSON', () => {
      assert.equal(rejected('film_work updated'), 'payload is not JSON');
      assert.equal(rejected(`{"t":"film_work","op":"U","ids":["${FILM}"]`), 'payload is not JSON');
    });

    it('JSON that is not an object', () => {
      assert.match(rejected('null'), /expected object/);
      assert.match(rejected(`["${FILM}"]`), /expected object/);
      assert.match(rejected('42'), /expected object/);
    });

    it('an unknown table', () => {
      assert.match(rejected(`{"t":"films","op":"U","ids":["${FILM}"]}`), /^unexpected payload: t /);
      assert.match(rejected(`{"t":"film_tombstone","op":"I","ids":["${FILM}"]}`), /: t /);
      assert.match(rejected(`{"op":"U","ids":["${FILM}"]}`), /: t /);
    });

    it('a bad operation', () => {
      assert.match(rejected(`{"t":"film_work","op":"X","ids":["${FILM}"]}`), /: op /);
      assert.match(rejected(`{"t":"film_work","op":"UPDATE","ids":["${FILM}"]}`), /: op /);
      assert.match(rejected(`{"t":"film_work","op":"u","ids":["${FILM}"]}`), /: op /);
      assert.match(rejected(`{"t":"film_work","ids":["${FILM}"]}`), /: op /);
    });

    it('a key that is not a uuid', () => {
      assert.equal(
        rejected(`{"t":"film_work","op":"U","ids":["${FILM}","not-a-uuid"]}`),
        'unexpected payload: ids.1 is not a uuid',
      );
      assert.match(rejected(`{"t":"genre_film_work","op":"I","films":[42]}`), /films\.0/);
      assert.match(rejected(`{"t":"film_work","op":"U","ids":"${FILM}"}`), /: ids /);
    });

    it('fields the triggers never send', () => {
      assert.match(
        rejected(`{"t":"film_work","op":"U","ids":["${FILM}"],"title":"Solaris"}`),
        /Unrecognized key: "title"/,
      );
      assert.match(rejected('{"t":"person","op":"U","many":false}'), /: many /);
    });

    it('a change with no keys that is not marked many', () => {
      const reason = 'unexpected payload: no keys and not marked many';
      assert.equal(rejected('{"t":"film_work","op":"U"}'), reason);
      assert.equal(rejected('{"t":"person_film_work","op":"D"}'), reason);
      assert.match(rejected('{"t":"film_work","op":"U","ids":[]}'), /: ids /);
    });

    it('a payload near the 8000-byte NOTIFY limit full of junk', () => {
      const junk = 'x'.repeat(7990);
      assert.equal(rejected(junk), 'payload is not JSON');
      const padded = `{"t":"film_work","op":"U","ids":["${'z'.repeat(7950)}"]}`;
      assert.ok(padded.length > 7980 && padded.length < 8000);
      assert.equal(rejected(padded), 'unexpected payload: ids.0 is not a uuid');
    });
  });
});
