/** The genres index (contract.md section 2b): a genre's row and how many films it has. */
import { genresDefinition } from '../load/indexDefinition.js';
import * as sql from '../sql/genreQueries.js';
import type { DocumentKind } from './documentKind.js';

export const genres: DocumentKind = {
  name: 'genres',
  noun: 'genre',
  entity: 'genre',
  indexName: (config) => config.genresIndex,
  definition: genresDefinition,
  documents: sql.genreDocuments,
  ids: sql.genreIdPages,
  count: sql.countGenres,
  estimate: sql.estimateGenres,
  existing: sql.existingGenreIds,
  // films_count follows the links (and their cascades); nothing about a film itself shows here.
  touchedBy: {
    genre: { entity: 'genre' },
    genre_film_work: { entity: 'genre' },
    genre_tombstone: { entity: 'genre' },
  },
};
