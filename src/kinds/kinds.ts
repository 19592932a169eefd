/**
 * Every document kind, and how queue members name them. A queue member is a film id as it is (as
 * version 0.2 queued films, so a queue left by an upgrade is read as before), or `<kind>/<id>`
 * for the other kinds.
 */
import type { DocumentKind, KindName } from './documentKind.js';
import { films } from './films.js';
import { genres } from './genres.js';
import { persons } from './persons.js';

export const KINDS: readonly DocumentKind[] = [films, persons, genres];

export const KIND_NAMES: readonly KindName[] = KINDS.map((kind) => kind.name);

export function kindNamed(name: string): DocumentKind | undefined {
  return KINDS.find((kind) => kind.name === name);
}

/** The queue member of one document. */
export function memberOf(kind: KindName, id: string): string {
  return kind === 'films' ? id : `${kind}/${id}`;
}

/** A queue member's kind and id; null when it names no kind (it is dead-lettered). */
export function parseMember(member: string): { kind: DocumentKind; id: string } | null {
  const slash = member.indexOf('/');
  if (slash < 0) return { kind: films, id: member };
  const kind = kindNamed(member.slice(0, slash));
  return kind && kind !== films ? { kind, id: member.slice(slash + 1) } : null;
}
