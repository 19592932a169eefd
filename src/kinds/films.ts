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
    // A new person or genre has no films yet, and a deleted one's links cascade away (the link
    // tables report those films): only a rename changes films through these tables.
    person: { entity: 'person', via: sql.filmsOfPersons, liveOps: ['U'] },
    genre: { entity: 'genre', via: sql.filmsOfGenres, liveOps: ['U'] },
    person_film_work: { entity: 'film' },
    genre_film_work: { entity: 'film' },
    film_tombstone: { entity: 'film' },
  },
};
