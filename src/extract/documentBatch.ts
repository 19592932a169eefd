/**
 * The document of contract.md section 2, and the typed batch that extract hands to load (the
 * seed's dataclass between stages 2 and 3).
 */
import type { Claim } from '../queue/documentQueue.js';

export interface PersonRef {
  id: string;
  name: string;
}

export interface FilmDocument {
  id: string;
  title: string;
  description: string | null;
  imdb_rating: number | null;
  type: string;
  creation_date: string | null;
  genres: PersonRef[];
  genres_names: string[];
  directors: PersonRef[];
  directors_names: string[];
  actors: PersonRef[];
  actors_names: string[];
  writers: PersonRef[];
  writers_names: string[];
}

/** A film to (re)index, with the version of the read that produced it. */
export interface VersionedDocument {
  id: string;
  version: number;
  /**
   * The FilmDocument as JSON text on one line, as Postgres built it: parsing and re-serialising
   * every document would cost the loader more CPU than the rest of its work together.
   */
  json: string;
}

/** A film that no longer exists: its document goes. */
export interface Deletion {
  id: string;
  version: number;
}

/** Whose films a batch holds: a queue claim, or a reindex page (which has no claim id). */
export type BatchSource = Pick<Claim, 'workerId' | 'ids' | 'claimedAt'>;

export interface DocumentBatch {
  claim: BatchSource;
  documents: VersionedDocument[];
  deletions: Deletion[];
}
