/**
 * The indices of contract.md sections 2 and 2b: strict mappings, Russian + English analysis, the
 * same settings for all three. Changing a mapping means a new index version (the alias then moves
 * to it); bump that definition's version.
 */
import type { estypes } from '@elastic/elasticsearch';

export const INDEX_DEFINITION_VERSION = 1;

const ruEnText: estypes.MappingProperty = { type: 'text', analyzer: 'ru_en' };

/**
 * A keyword of free text (a title, a name). Lucene holds at most 32,766 bytes in one term, and
 * Elasticsearch refuses the whole document for a longer one; a character is at most 4 bytes of
 * UTF-8. A longer value stays whole in the document and its text field, and is left out of this
 * keyword's index (a term query, a sort or an aggregation on it does not see it).
 */
const textKeyword: estypes.MappingProperty = { type: 'keyword', ignore_above: 8_191 };

/** A text field with its keyword sub-field `raw`. */
const ruEnTextWithRaw: estypes.MappingProperty = {
  type: 'text',
  analyzer: 'ru_en',
  fields: { raw: textKeyword },
};

const nestedRef = (name: estypes.MappingProperty): estypes.MappingProperty => ({
  type: 'nested',
  dynamic: 'strict',
  properties: { id: { type: 'keyword' }, name },
});

/**
 * Nested objects one document may hold, across its nested fields: a person's `films`, a film's
 * genres and people together. Elasticsearch's default of 10,000 refused for good the document of
 * anyone in more films than that (a placeholder person such as "Unknown", linked to every film by
 * one statement), and of a film with that many people. A document past this limit (or past
 * `http.max_content_length`) still goes to the dead letters.
 */
export const NESTED_OBJECTS_LIMIT = 100_000;

export const indexSettings: estypes.IndicesIndexSettings = {
  refresh_interval: '1s',
  mapping: { nested_objects: { limit: NESTED_OBJECTS_LIMIT } },
  // Keep deleted documents' versions for an hour instead of 60 s, so a very late stale write for a
  // deleted film is still refused.
  gc_deletes: '1h',
  analysis: {
    filter: {
      english_stop: { type: 'stop', stopwords: '_english_' },
      english_stemmer: { type: 'stemmer', language: 'english' },
      english_possessive_stemmer: { type: 'stemmer', language: 'possessive_english' },
      russian_stop: { type: 'stop', stopwords: '_russian_' },
      russian_stemmer: { type: 'stemmer', language: 'russian' },
    },
    analyzer: {
      ru_en: {
        type: 'custom',
        tokenizer: 'standard',
        filter: [
          'lowercase',
          'english_possessive_stemmer',
          'english_stop',
          'english_stemmer',
          'russian_stop',
          'russian_stemmer',
        ],
      },
    },
  },
};

export const indexMappings: estypes.MappingTypeMapping = {
  dynamic: 'strict',
  properties: {
    id: { type: 'keyword' },
    title: ruEnTextWithRaw,
    description: ruEnText,
    imdb_rating: { type: 'float' },
    type: { type: 'keyword' },
    creation_date: { type: 'date' },
    genres: nestedRef(textKeyword),
    genres_names: textKeyword,
    directors: nestedRef(ruEnText),
    actors: nestedRef(ruEnText),
    writers: nestedRef(ruEnText),
    directors_names: ruEnText,
    actors_names: ruEnText,
    writers_names: ruEnText,
  },
};

export const personsMappings: estypes.MappingTypeMapping = {
  dynamic: 'strict',
  properties: {
    id: { type: 'keyword' },
    full_name: ruEnTextWithRaw,
    films: {
      type: 'nested',
      dynamic: 'strict',
      properties: {
        id: { type: 'keyword' },
        title: ruEnText,
        imdb_rating: { type: 'float' },
        roles: { type: 'keyword' },
      },
    },
  },
};

export const genresMappings: estypes.MappingTypeMapping = {
  dynamic: 'strict',
  properties: {
    id: { type: 'keyword' },
    name: ruEnTextWithRaw,
    description: ruEnText,
    films_count: { type: 'integer' },
  },
};

/** What creating one of the indices takes. */
export interface IndexDefinition {
  /** The concrete index is `<alias>_v<version>`. */
  version: number;
  settings: estypes.IndicesIndexSettings;
  mappings: estypes.MappingTypeMapping;
}

export const filmsDefinition: IndexDefinition = {
  version: INDEX_DEFINITION_VERSION,
  settings: indexSettings,
  mappings: indexMappings,
};

export const personsDefinition: IndexDefinition = {
  version: 1,
  settings: indexSettings,
  mappings: personsMappings,
};

export const genresDefinition: IndexDefinition = {
  version: 1,
  settings: indexSettings,
  mappings: genresMappings,
};
