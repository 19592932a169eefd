/** The persons index (contract.md section 2b): a person and the films they have a role in. */
import { personsDefinition } from '../load/indexDefinition.js';
import * as sql from '../sql/personQueries.js';
import type { DocumentKind } from './documentKind.js';

export const persons: DocumentKind = {
  name: 'persons',
  noun: 'person',
  entity: 'person',
  indexName: (config) => config.personsIndex,
  definition: personsDefinition,
  documents: sql.personDocuments,
  ids: sql.personIdPages,
  count: sql.countPersons,
  estimate: sql.estimatePersons,
  existing: sql.existingPersonIds,
  touchedBy: {
    person: { entity: 'person' },
    // A film's title or rating shows in its people's documents. A deleted film's links cascade
    // away, or are deleted with it, and person_film_work reports those persons. An insert is
    // resolved too (see films.ts: a film replaced under its id keeps its links).
    film_work: { entity: 'film', via: sql.personsOfFilms, liveOps: ['I', 'U'] },
    person_film_work: { entity: 'person' },
    person_tombstone: { entity: 'person' },
  },
};
