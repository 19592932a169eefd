/**
 * The index of contract.md section 2: strict mapping, Russian + English analysis. Changing the
 * mapping means a new index version (the alias then moves to it); bump INDEX_DEFINITION_VERSION.
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
