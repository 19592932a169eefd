#!/usr/bin/env bash
# Backing services for local development and CI: PostgreSQL, Redis, Elasticsearch.
#
#   scripts/services.sh [up]   start whatever is not answering (idempotent)
#   scripts/services.sh down   stop the Elasticsearch this script started
#   scripts/services.sh status report what answers (exit 1 if anything is down)
#   scripts/services.sh es-install  fetch and unpack Elasticsearch without starting it, and print
#                           ES_HOME, ES_JAVA_HOME and ES_USER (tests start nodes of their own)
#
# Env: DATABASE_URL, REDIS_URL, ELASTICSEARCH_URL, MOVIES_ETL_CACHE,
#      ES_JAVA_HOME (JDK 21+), ES_HEAP (default 512m), MAVEN_REPO (default ~/.m2/repository).
set -euo pipefail

# The only place the Elasticsearch version is pinned (the shim plugin is built against it).
ES_VERSION=9.5.4

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
SHIM_SRC="$ROOT/scripts/es-analysis-shim"
SHIM_NAME=movies-analysis-shim

# The settings the syncer will run with: the environment, with the project's .env beneath it (read
# by node, as the syncer reads it, the environment winning). Without node (before `npm ci` could
# run), the environment alone.
if [ -f "$ROOT/.env" ] && command -v node >/dev/null 2>&1; then
  eval "$(cd "$ROOT" && node --env-file=.env -e '
    for (const name of ["DATABASE_URL", "REDIS_URL", "ELASTICSEARCH_URL"]) {
      const value = process.env[name];
      if (value) console.log(`${name}=${"\x27" + value.replaceAll("\x27", "\x27\\\x27\x27") + "\x27"}`);
    }')"
fi
DATABASE_URL=${DATABASE_URL:-postgres://postgres@127.0.0.1:5432/movies}
REDIS_URL=${REDIS_URL:-redis://127.0.0.1:6379/0}
ES_URL=${ELASTICSEARCH_URL:-http://127.0.0.1:9200}
ES_URL=${ES_URL%/}
CACHE=${MOVIES_ETL_CACHE:-$HOME/.cache/movies-etl}
ES_HOME="$CACHE/elasticsearch-$ES_VERSION"
ES_PIDFILE="$CACHE/run/elasticsearch.pid"
ES_LOG="$ES_HOME/logs/movies-etl.log" # <path.logs>/<cluster.name>.log
ES_CONSOLE="$CACHE/run/elasticsearch.out"  # launcher output (it echoes the whole startup log)
ES_HEAP=${ES_HEAP:-512m}
M2_REPO=${MAVEN_REPO:-$HOME/.m2/repository}
ES_ZIP="$M2_REPO/org/elasticsearch/distribution/integ-test-zip/elasticsearch/$ES_VERSION/elasticsearch-$ES_VERSION.zip"
ES_SYSTEM_USER=movies-es

log() { echo "services: $*" >&2; }
die() {
  echo "services: error: $*" >&2
  exit 1
}
is_root() { [ "$(id -u)" -eq 0 ]; }
have() { command -v "$1" >/dev/null 2>&1; }
is_local() {
  case "$1" in
    '' | localhost | 127.* | ::1 | '[::1]') return 0 ;;
    *) return 1 ;;
  esac
}

TMP_DIRS=()
cleanup() { [ ${#TMP_DIRS[@]} -eq 0 ] || rm -rf "${TMP_DIRS[@]}"; }
trap cleanup EXIT

# Splits scheme://[user[:pass]@]host[:port][/path] into U_USER U_PASS U_HOST U_PORT U_PATH.
parse_url() {
  local re='^[A-Za-z][A-Za-z0-9+.-]*://(([^:@/]*)(:([^@/]*))?@)?(\[[^]/]*\]|[^:/?#]*)(:([0-9]+))?(/[^?#]*)?'
  [[ $1 =~ $re ]] || die "cannot parse URL: $1"
  U_USER=$(urldecode "${BASH_REMATCH[2]}")
  U_PASS=$(urldecode "${BASH_REMATCH[4]}")
  U_HOST=${BASH_REMATCH[5]}
  U_PORT=${BASH_REMATCH[7]}
  U_PATH=$(urldecode "${BASH_REMATCH[8]#/}")
}
urldecode() { printf '%b' "${1//%/\\x}"; }

# Runs "$@" until it succeeds or $1 seconds pass.
wait_for() {
  local timeout=$1
  shift
  local deadline=$((SECONDS + timeout))
  until "$@" >/dev/null 2>&1; do
    [ "$SECONDS" -lt "$deadline" ] || return 1
    sleep 0.5
  done
}

# Installs a Debian package when its command is missing; only root can.
ensure_cmd() {
  local cmd=$1 pkg=$2
  have "$cmd" && return 0
  if is_root && have apt-get; then
    log "installing $pkg (needed for '$cmd')"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq </dev/null >&2
    apt-get install -y -qq "$pkg" </dev/null >&2
  else
    die "'$cmd' is missing; install the '$pkg' package (not root, so not installing it myself)"
  fi
}

# ---------------------------------------------------------------- PostgreSQL

pg_conn() {
  parse_url "$DATABASE_URL"
  PG_HOST=${U_HOST:-127.0.0.1}
  PG_PORT=${U_PORT:-5432}
  PG_USER=${U_USER:-postgres}
  PG_DB=$U_PATH
  [ -n "$U_PASS" ] && export PGPASSWORD="$U_PASS"
  [ -n "$PG_DB" ] || die "DATABASE_URL has no database name: $DATABASE_URL"
}

pg_ready() { pg_isready -q -h "$PG_HOST" -p "$PG_PORT"; }

pg_up() {
  have pg_isready && have psql || die "PostgreSQL client tools (pg_isready, psql) are missing"
  pg_conn
  if ! pg_ready; then
    local version
    if is_local "$PG_HOST" && is_root && have pg_ctlcluster; then
      version=$(ls /etc/postgresql 2>/dev/null | sort -V | tail -n 1)
      [ -n "$version" ] || die "pg_ctlcluster exists but no cluster is configured under /etc/postgresql"
      log "PostgreSQL is not answering on $PG_HOST:$PG_PORT; starting cluster $version/main"
      pg_ctlcluster --skip-systemctl-redirect "$version" main start </dev/null >&2
    else
      die "PostgreSQL is not answering on $PG_HOST:$PG_PORT and I cannot start it here (needs root, a local host and pg_ctlcluster)"
    fi
    wait_for 30 pg_ready || die "PostgreSQL did not become ready on $PG_HOST:$PG_PORT within 30 s"
  fi
  local psql=(psql -X -w -q -v ON_ERROR_STOP=1 -h "$PG_HOST" -p "$PG_PORT" -U "$PG_USER" -d postgres)
  local exists
  exists=$("${psql[@]}" -tA -v db="$PG_DB" <<'SQL'
SELECT 1 FROM pg_database WHERE datname = :'db';
SQL
  )
  if [ "$exists" != 1 ]; then
    log "creating database $PG_DB"
    "${psql[@]}" -v db="$PG_DB" <<'SQL'
CREATE DATABASE :"db";
SQL
  fi
}

# --------------------------------------------------------------------- Redis

redis_conn() {
  parse_url "$REDIS_URL"
  REDIS_HOST=${U_HOST:-127.0.0.1}
  REDIS_PORT=${U_PORT:-6379}
}

redis_ready() { [ "$(redis-cli -u "$REDIS_URL" ping </dev/null 2>/dev/null)" = PONG ]; }

redis_up() {
  have redis-cli || die "redis-cli is missing"
  redis_conn
  redis_ready && return 0
  if is_local "$REDIS_HOST" && is_root && have redis-server; then
    log "Redis is not answering on $REDIS_HOST:$REDIS_PORT; starting redis-server"
    mkdir -p /var/lib/redis /var/log/redis
    # Throwaway cache for dev/CI: no persistence.
    redis-server --daemonize yes --bind 127.0.0.1 -::1 --port "$REDIS_PORT" --save "" --appendonly no \
      --dir /var/lib/redis --logfile /var/log/redis/ci.log </dev/null >&2
  else
    die "Redis is not answering at $REDIS_URL and I cannot start it here (needs root, a local host and redis-server)"
  fi
  wait_for 30 redis_ready || die "Redis did not answer PONG within 30 s (see /var/log/redis/ci.log)"
}

# ------------------------------------------------------------- Elasticsearch

es_healthy() { curl -fs -o /dev/null --max-time 5 "$ES_URL/_cluster/health"; }
es_yellow() { curl -fs -o /dev/null --max-time 10 "$ES_URL/_cluster/health?wait_for_status=yellow&timeout=5s"; }

# Prints the pid of the Elasticsearch this script started, if it is still alive.
es_pid() {
  local pid
  pid=$(cat "$ES_PIDFILE" 2>/dev/null) || return 1
  [ -n "$pid" ] && grep -qa org.elasticsearch "/proc/$pid/cmdline" 2>/dev/null || return 1
  echo "$pid"
}

java_major() { "$1/bin/java" -version 2>&1 | sed -n 's/.* version "\([0-9]*\).*/\1/p' | head -n 1; }

# ES 9 needs Java 21+, and the default java on many boxes is older.
find_es_java() {
  local candidates=() j major
  if [ -n "${ES_JAVA_HOME:-}" ]; then
    candidates=("$ES_JAVA_HOME")
  else
    candidates=(/usr/lib/jvm/temurin-25-jdk-amd64 $(ls -d /usr/lib/jvm/*/ 2>/dev/null | sort -rV) ${JAVA_HOME:-})
  fi
  for j in "${candidates[@]}"; do
    j=${j%/}
    [ -x "$j/bin/java" ] || continue
    major=$(java_major "$j")
    if [ "${major:-0}" -ge 21 ]; then
      ES_JAVA_HOME=$j
      return 0
    fi
  done
  if [ -n "${ES_JAVA_HOME:-}" ]; then
    die "ES_JAVA_HOME=$ES_JAVA_HOME is not a Java 21+ installation"
  fi
  die "Elasticsearch $ES_VERSION needs a JDK 21+; none found in /usr/lib/jvm, set ES_JAVA_HOME"
}

# ES refuses to run as root, so root runs it as a dedicated system user.
setup_es_user() {
  if ! is_root; then
    ES_USER=$(id -un)
    return 0
  fi
  ES_USER=$ES_SYSTEM_USER
  if ! id -u "$ES_USER" >/dev/null 2>&1; then
    log "creating system user $ES_USER to run Elasticsearch"
    useradd -r -M -s /usr/sbin/nologin "$ES_USER"
  fi
  # The default cache lives under root's home (mode 700): let the ES user traverse (not list) the path.
  local d=$CACHE
  while [ "$d" != / ]; do
    if ! as_es test -x "$d"; then
      log "allowing $ES_USER to traverse $d (chmod o+x) so it can reach the cache"
      chmod o+x "$d"
    fi
    d=$(dirname "$d")
  done
}

as_es() {
  if ! is_root; then
    "$@"
  elif have runuser; then
    runuser -u "$ES_USER" -- "$@"
  else
    su -s /bin/bash "$ES_USER" -c "$(printf '%q ' "$@")"
  fi
}

es_fetch() {
  [ -f "$ES_ZIP" ] && return 0
  ensure_cmd mvn maven
  log "downloading Elasticsearch $ES_VERSION with Maven (~130 MB, cached in $M2_REPO)"
  # Pin the local repo so the zip lands where we look, whatever settings.xml says.
  # Output goes to a file: even -B -q makes Debian's Maven print stray colour codes.
  local out="$CACHE/run/mvn.out"
  if ! mvn -B -q dependency:get -Dmaven.repo.local="$M2_REPO" -Dtransitive=false \
    -Dartifact="org.elasticsearch.distribution.integ-test-zip:elasticsearch:$ES_VERSION:zip" </dev/null >"$out" 2>&1; then
    tail -n 30 "$out" >&2
    die "mvn could not download Elasticsearch $ES_VERSION (full output: $out)"
  fi
  [ -f "$ES_ZIP" ] || die "mvn finished but $ES_ZIP is missing"
}

es_unpack() {
  [ -x "$ES_HOME/bin/elasticsearch" ] && return 0
  ensure_cmd unzip unzip
  log "unpacking Elasticsearch $ES_VERSION into $ES_HOME"
  local tmp
  tmp=$(mktemp -d "$CACHE/.unpack.XXXXXX")
  TMP_DIRS+=("$tmp")
  unzip -q "$ES_ZIP" -d "$tmp"
  # Move into place in one step so an interrupted unzip never looks unpacked.
  rm -rf "$ES_HOME"
  mv "$tmp/elasticsearch-$ES_VERSION" "$ES_HOME"
}

es_build_shim() {
  local dest="$ES_HOME/plugins/$SHIM_NAME"
  local jar="$dest/$SHIM_NAME.jar"
  if [ -f "$jar" ] && [ -f "$dest/plugin-descriptor.properties" ] &&
    [ -z "$(find "$SHIM_SRC" -type f -newer "$jar" -print -quit)" ]; then
    return 0
  fi
  [ -x "$ES_JAVA_HOME/bin/javac" ] || die "$ES_JAVA_HOME has no javac; the $SHIM_NAME plugin needs a JDK 21+, set ES_JAVA_HOME"
  log "building the $SHIM_NAME plugin (Elasticsearch $ES_VERSION)"
  local tmp
  tmp=$(mktemp -d "$CACHE/.shim.XXXXXX")
  TMP_DIRS+=("$tmp")
  local sources=()
  mapfile -t sources < <(find "$SHIM_SRC/src" -name '*.java')
  "$ES_JAVA_HOME/bin/javac" --release 21 -nowarn -cp "$ES_HOME/lib/*" -d "$tmp/classes" "${sources[@]}" >&2
  "$ES_JAVA_HOME/bin/jar" --create --file "$tmp/$SHIM_NAME.jar" -C "$tmp/classes" .
  sed "s/@ES_VERSION@/$ES_VERSION/g" "$SHIM_SRC/plugin-descriptor.properties" >"$tmp/plugin-descriptor.properties"
  rm -rf "$dest"
  mkdir -p "$dest"
  mv "$tmp/$SHIM_NAME.jar" "$tmp/plugin-descriptor.properties" "$dest/"
}

es_write_config() {
  local host=$1 port=$2
  cat >"$ES_HOME/config/elasticsearch.yml" <<EOF
# Written by scripts/services.sh on every start; edit the script, not this file.
cluster.name: movies-etl
node.name: movies-etl-local
discovery.type: single-node
network.host: $host
http.port: $port
path.data: "$ES_HOME/data"
path.logs: "$ES_HOME/logs"
# Local dev/CI only: no TLS or auth.
xpack.security.enabled: false
# Small CI disks would otherwise block shard allocation.
cluster.routing.allocation.disk.threshold_enabled: false
EOF
}

es_fail() {
  log "error: $*"
  local f
  for f in "$ES_CONSOLE" "$ES_LOG"; do
    if [ -s "$f" ]; then
      log "last lines of $f:"
      tail -n 40 "$f" >&2
    fi
  done
  exit 1
}

es_wait() {
  local deadline=$((SECONDS + 120))
  until es_yellow; do
    es_pid >/dev/null || es_fail "Elasticsearch exited during startup"
    [ "$SECONDS" -lt "$deadline" ] || es_fail "Elasticsearch did not reach yellow within 120 s"
    sleep 1
  done
}

ES_ORIGIN=""

es_origin() {
  local pid
  if pid=$(es_pid); then
    ES_ORIGIN="started by services.sh, pid $pid"
  else
    ES_ORIGIN="already running, not managed by services.sh"
  fi
}

es_up() {
  have curl || die "curl is missing"
  if es_healthy; then
    es_origin
    return 0
  fi
  parse_url "$ES_URL"
  local host=${U_HOST:-127.0.0.1} port=${U_PORT:-9200}
  [ "$host" = localhost ] && host=127.0.0.1
  is_local "$host" || die "Elasticsearch is not answering at $ES_URL, and I only start it on a local address"
  [[ $ES_URL == http://* ]] || die "Elasticsearch is not answering at $ES_URL; the local server I start speaks plain http only"

  mkdir -p "$CACHE/run"
  # Serialise concurrent "up" runs on the same cache.
  if have flock; then
    exec 9>"$CACHE/run/lock"
    flock 9
    if es_healthy; then
      es_origin
      return 0
    fi
  fi

  setup_es_user
  local pid
  if pid=$(es_pid); then
    log "Elasticsearch (pid $pid) is running but not healthy yet; waiting"
    es_wait
    es_origin
    return 0
  fi

  find_es_java
  es_fetch
  es_unpack
  es_build_shim
  es_write_config "$host" "$port"
  # Keep launcher and server temp files in the cache: ES leaves new ones in /tmp on every start.
  rm -rf "$ES_HOME/tmp"
  mkdir -p "$ES_HOME/tmp"
  if is_root; then
    chown -R "$ES_USER:" "$ES_HOME" "$CACHE/run"
  fi
  rm -f "$ES_PIDFILE"

  log "starting Elasticsearch $ES_VERSION on $host:$port (heap $ES_HEAP, java $ES_JAVA_HOME)"
  # 9>&- keeps the lock out of the daemon; -d returns once the node is up or has failed.
  if ! (cd "$ES_HOME" && as_es env ES_JAVA_HOME="$ES_JAVA_HOME" ES_PATH_CONF="$ES_HOME/config" ES_TMPDIR="$ES_HOME/tmp" \
    ES_JAVA_OPTS="-Xms$ES_HEAP -Xmx$ES_HEAP ${ES_JAVA_OPTS:-}" CLI_JAVA_OPTS="-Djava.io.tmpdir=$ES_HOME/tmp" \
    "$ES_HOME/bin/elasticsearch" -d -p "$ES_PIDFILE" </dev/null >"$ES_CONSOLE" 2>&1 9>&-); then
    es_fail "Elasticsearch failed to start"
  fi
  es_wait
  es_origin
}

es_down() {
  local pid
  if ! pid=$(es_pid); then
    log "no Elasticsearch started by this script is running (no live pid in $ES_PIDFILE)"
    rm -f "$ES_PIDFILE" 2>/dev/null || true
    return 0
  fi
  log "stopping Elasticsearch (pid $pid)"
  kill "$pid"
  local deadline=$((SECONDS + 60))
  while [ -d "/proc/$pid" ]; do
    if [ "$SECONDS" -ge "$deadline" ]; then
      log "Elasticsearch ignored SIGTERM for 60 s; killing it"
      kill -9 "$pid" 2>/dev/null || true
      break
    fi
    sleep 0.5
  done
  rm -f "$ES_PIDFILE"
}

# ---------------------------------------------------------------- commands

cmd_up() {
  pg_up
  redis_up
  es_up
  printf '%-14s %s\n' \
    postgres "$PG_HOST:$PG_PORT (database $PG_DB)" \
    redis "$REDIS_HOST:$REDIS_PORT" \
    elasticsearch "$ES_URL ($ES_ORIGIN)"
}

cmd_down() {
  es_down
  log "PostgreSQL and Redis left running: they belong to the machine, not to this script"
}

cmd_status() {
  local down=0 pg redis es pid
  pg_conn
  redis_conn
  if have pg_isready && pg_ready; then pg=up; else pg=down down=1; fi
  if have redis-cli && redis_ready; then redis=up; else redis=down down=1; fi
  if have curl && es_healthy; then es=up; else es=down down=1; fi
  if pid=$(es_pid); then es="$es (started by services.sh, pid $pid)"; fi
  printf '%-14s %s\n' \
    postgres "$PG_HOST:$PG_PORT $pg" \
    redis "$REDIS_HOST:$REDIS_PORT $redis" \
    elasticsearch "$ES_URL $es"
  return "$down"
}

# For tests that run Elasticsearch nodes of their own (a two-node cluster): the same server,
# plugin and user as the one `up` starts, as KEY=value lines.
cmd_es_install() {
  mkdir -p "$CACHE/run"
  setup_es_user
  find_es_java
  es_fetch
  es_unpack
  es_build_shim
  printf 'ES_HOME=%s\nES_JAVA_HOME=%s\nES_USER=%s\n' "$ES_HOME" "$ES_JAVA_HOME" "$ES_USER"
}

case "${1:-up}" in
  up) cmd_up ;;
  es-install) cmd_es_install ;;
  down) cmd_down ;;
  status) cmd_status ;;
  -h | --help | help) sed -n '2,11p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//' ;;
  *) die "unknown command '$1' (expected up, down, status or es-install)" ;;
esac
