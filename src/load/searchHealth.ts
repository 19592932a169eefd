/**
 * What a readiness probe should know of Elasticsearch beyond "it answers": how many nodes the
 * cluster has, whether every replica is placed, and whether one of the syncer's own indices has
 * lost a primary shard.
 *
 * Yellow (a node of two gone, its replicas unplaced) still takes every write: the syncer is ready
 * and says what it sees. Red on one of our indices means writes to the missing primary fail until
 * the node comes back: not ready. Red caused only by someone else's index is not our problem.
 */
import type { Client } from '@elastic/elasticsearch';

export interface SearchHealth {
  status: 'green' | 'yellow' | 'red' | 'unknown';
  nodes: number;
  dataNodes: number;
  unassignedShards: number;
  /** The syncer's indices (or aliases) whose status is red; empty unless the cluster is red. */
  redIndices: string[];
}

export async function readSearchHealth(
  es: Client,
  indices: readonly string[],
  timeoutMs = 2_000,
): Promise<SearchHealth> {
  const health = await es.cluster.health({ timeout: '1s' }, { requestTimeout: timeoutMs });
  const status = normalise(health.status);
  let redIndices: string[] = [];
  if (status === 'red') {
    // One call for our indices alone: listing every index of a big cluster would be heavy.
    const ours = await es.cluster.health(
      { index: [...indices], level: 'indices', timeout: '1s' },
      { requestTimeout: timeoutMs, ignore: [408] },
    );
    redIndices = Object.entries(ours.indices ?? {})
      .filter(([, index]) => normalise(index.status) === 'red')
      .map(([name]) => name);
  }
  return {
    status,
    nodes: health.number_of_nodes,
    dataNodes: health.number_of_data_nodes,
    unassignedShards: health.unassigned_shards,
    redIndices,
  };
}

/** A line for /readyz and the status page, or null when all is well. */
export function describeSearchHealth(health: SearchHealth): string | null {
  if (health.status === 'green') return null;
  const nodes = `${health.nodes} node${health.nodes === 1 ? '' : 's'} (${health.dataNodes} with data)`;
  const copies = health.unassignedShards === 1 ? 'copy' : 'copies';
  return `elasticsearch: cluster ${health.status}, ${nodes}, ${health.unassignedShards} shard ${copies} unassigned`;
}

function normalise(status: string): SearchHealth['status'] {
  const lower = status.toLowerCase();
  return lower === 'green' || lower === 'yellow' || lower === 'red' ? lower : 'unknown';
}
