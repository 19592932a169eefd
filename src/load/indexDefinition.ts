/**
 * The indices of contract.md sections 2 and 2b: strict mappings, Russian + English analysis, the
 * same settings for all three. Changing a mapping means a new index version (the alias then moves
 * to it); bump that definition's version.
 */
import type { estypes } from '@elastic/elasticsearch';

export const INDEX_DEFINITION_VERSION = 1;

const ruEnText: estypes.MappingProperty = { type: 'text', analyzer: 'ru_en' };

const nestedRef = (name: estypes.MappingProperty): estypes.MappingProperty => ({
  type: 'nested',
  dynamic: 'strict',
  properties: { id: { type: 'keyword' }, name },
});

export const indexSettings: estypes.IndicesIndexSettings = {
  refresh_interval: '1s',
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
    title: { type: 'text', analyzer: 'ru_en', fields: { raw: { type: 'keyword' } } },
    description: ruEnText,
    imdb_rating: { type: 'float' },
    type: { type: 'keyword' },
    creation_date: { type: 'date' },
    genres: nestedRef({ type: 'keyword' }),
    genres_names: { type: 'keyword' },
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
    full_name: { type: 'text', analyzer: 'ru_en', fields: { raw: { type: 'keyword' } } },
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
    name: { type: 'text', analyzer: 'ru_en', fields: { raw: { type: 'keyword' } } },
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
