/** The Elasticsearch client, built from config (URL, API key or basic auth, CA certificate). */
import { readFileSync } from 'node:fs';
import { Client } from '@elastic/elasticsearch';
import { splitUrls, type Config } from '../config.js';

type ClientOptions = ConstructorParameters<typeof Client>[0];

export function createElasticsearchClient(es: Config['elasticsearch']): Client {
  const options: ClientOptions = {
    // Several nodes: requests go round them, and one that fails to connect is left out (and tried
    // again later) while the others serve.
    nodes: splitUrls(es.url),
    // Retries are ours (cockatiel, per bulk item); the client's own would hide failures from us.
    maxRetries: 0,
    requestTimeout: 60_000,
  };
  if (es.apiKey) options.auth = { apiKey: es.apiKey };
  else if (es.username && es.password) {
    options.auth = { username: es.username, password: es.password };
  }
  if (es.caCertPath) options.tls = { ca: readFileSync(es.caCertPath) };
  return new Client(options);
}
