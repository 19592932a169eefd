/*
 * Why this exists: the Elasticsearch zip published on Maven Central (the
 * "integ-test-zip" that scripts/services.sh runs locally and in CI) omits the
 * analysis-common module, so the "stemmer" token filter type is missing there.
 * This plugin registers the same Lucene stemmers under the stock name and
 * language names, so the project's index mapping is identical on stock
 * Elasticsearch and on this local server. A stock distribution already ships
 * "stemmer" and needs no shim (installing it there would clash with it).
 */
package moviesetl.analysis;

import java.util.Locale;
import java.util.Map;
import java.util.function.UnaryOperator;

import org.apache.lucene.analysis.TokenStream;
import org.apache.lucene.analysis.en.EnglishMinimalStemFilter;
import org.apache.lucene.analysis.en.EnglishPossessiveFilter;
import org.apache.lucene.analysis.en.KStemFilter;
import org.apache.lucene.analysis.en.PorterStemFilter;
import org.apache.lucene.analysis.ru.RussianLightStemFilter;
import org.apache.lucene.analysis.snowball.SnowballFilter;
import org.elasticsearch.common.settings.Settings;
import org.elasticsearch.index.analysis.AbstractTokenFilterFactory;
import org.elasticsearch.index.analysis.TokenFilterFactory;
import org.elasticsearch.indices.analysis.AnalysisModule.AnalysisProvider;
import org.elasticsearch.plugins.AnalysisPlugin;
import org.elasticsearch.plugins.Plugin;
import org.tartarus.snowball.ext.RussianStemmer;

public class StemmerShimPlugin extends Plugin implements AnalysisPlugin {

    @Override
    public Map<String, AnalysisProvider<TokenFilterFactory>> getTokenFilters() {
        return Map.of("stemmer", (indexSettings, environment, name, settings) -> new StemmerFactory(name, settings));
    }

    static final class StemmerFactory extends AbstractTokenFilterFactory {
        private final UnaryOperator<TokenStream> stemmer;

        StemmerFactory(String name, Settings settings) {
            super(name);
            // Stock ES also accepts the legacy "name" key; its default "porter" equals "english".
            String language = settings.get("language", settings.get("name", "english"));
            // Resolve now so a bad mapping fails at index creation, not at first analysis.
            this.stemmer = forLanguage(language);
        }

        @Override
        public TokenStream create(TokenStream input) {
            return stemmer.apply(input);
        }

        // Same Lucene classes stock ES picks for these language names.
        private static UnaryOperator<TokenStream> forLanguage(String language) {
            switch (language.toLowerCase(Locale.ROOT)) {
                case "russian":
                    // New stemmer per stream: Snowball stemmers are stateful.
                    return in -> new SnowballFilter(in, new RussianStemmer());
                case "light_russian":
                    return RussianLightStemFilter::new;
                case "english":
                case "porter":
                    return PorterStemFilter::new;
                case "light_english":
                case "kstem":
                    return KStemFilter::new;
                case "minimal_english":
                    return EnglishMinimalStemFilter::new;
                case "possessive_english":
                    return EnglishPossessiveFilter::new;
                default:
                    throw new IllegalArgumentException("stemmer language [" + language
                        + "] is not supported by movies-analysis-shim; supported: russian, light_russian, english,"
                        + " porter, light_english, kstem, minimal_english, possessive_english"
                        + " (a stock Elasticsearch distribution has the full list)");
            }
        }
    }
}
