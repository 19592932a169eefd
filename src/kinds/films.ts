/** The films index (contract.md section 2): a film's row, its genres and its people. */
import { filmsDefinition } from '../load/indexDefinition.js';
import * as sql from '../sql/queries.js';
import type { DocumentKind } from './documentKind.js';

export const films: DocumentKind = {
  name: 'films',
  noun: 'film',
  entity: 'film',
  indexName: (config) => config.index,
  definition: filmsDefinition,
  documents: sql.filmDocuments,
  ids: sql.filmIdPages,
  count: sql.countFilms,
  estimate: sql.estimateFilms,
  existing: sql.existingFilmIds,
  touchedBy: {
    film_work: { entity: 'film' },
    // A deleted person's or genre's links cascade away, or are deleted with it (the link tables
    // report those films). An insert is resolved too: a new row has no films and costs one look,
    // but one deleted and inserted again under its id in one transaction, its links kept (foreign
    // keys checked at commit, as Django makes them), may bear a new name.
    person: { entity: 'person', via: sql.filmsOfPersons, liveOps: ['I', 'U'] },
    genre: { entity: 'genre', via: sql.filmsOfGenres, liveOps: ['I', 'U'] },
    person_film_work: { entity: 'film' },
    genre_film_work: { entity: 'film' },
    film_tombstone: { entity: 'film' },
  },
};
