#!/usr/bin/env bash
# Starts (or stops) the services the scale-out backends are tested against, on loopback only:
# PostgreSQL 15 and Redis from Debian packages, and an S3-compatible server (moto). Installs
# what is missing. Everything lives under $AURUM_SERVICES_DIR (default /tmp/aurum-services), so
# a clean clone needs nothing beside it.
#
#   scripts/services/run.sh start   # start all three (idempotent), write the env file
#   scripts/services/run.sh stop    # stop them
#   scripts/services/run.sh env     # print the env file: `source <(scripts/services/run.sh env)`
#
# The env file exports AURUM_TEST_DATABASE_URL, AURUM_TEST_REDIS_URL, AURUM_TEST_S3_ENDPOINT and
# AURUM_TEST_S3_BUCKET; the backend tests skip with a printed notice when they are unset and
# fail when they are set but the service does not answer.
set -euo pipefail
cd "$(dirname "$0")/../.."

dir=${AURUM_SERVICES_DIR:-/tmp/aurum-services}
pg_port=${AURUM_SERVICES_PG_PORT:-55432}
redis_port=${AURUM_SERVICES_REDIS_PORT:-56379}
s3_port=${AURUM_SERVICES_S3_PORT:-59000}
bucket=aurum-test
envfile="$dir/env"

if [ "$(id -u)" = 0 ]; then SUDO=""; else SUDO="sudo"; fi

install_debian() {
  local missing=()
  command -v pg_config >/dev/null || missing+=(postgresql)
  if command -v pg_config >/dev/null && [ ! -x "$(pg_config --bindir)/initdb" ]; then
    missing+=(postgresql)
  fi
  command -v redis-server >/dev/null || missing+=(redis-server)
  if [ ${#missing[@]} -gt 0 ]; then
    echo "installing ${missing[*]} (Debian)"
    $SUDO apt-get update -qq
    $SUDO env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
  fi
}

# Runs a command as the postgres user when we are root (initdb refuses to run as root).
as_pg() {
  if [ "$(id -u)" = 0 ]; then runuser -u postgres -- "$@"; else "$@"; fi
}

start_pg() {
  local bin data
  bin=$(pg_config --bindir)
  data="$dir/pg"
  if [ -f "$data/postmaster.pid" ] && as_pg "$bin/pg_ctl" -D "$data" status >/dev/null 2>&1; then
    return
  fi
  mkdir -p "$dir"
  chmod 1777 "$dir"
  if [ ! -f "$data/PG_VERSION" ]; then
    rm -rf "$data"
    mkdir -p "$data"
    [ "$(id -u)" = 0 ] && chown postgres "$data"
    as_pg "$bin/initdb" -D "$data" -A trust -U postgres >"$dir/pg-initdb.log"
  fi
  as_pg "$bin/pg_ctl" -D "$data" -l "$data/log" -w \
    -o "-c listen_addresses=127.0.0.1 -p $pg_port -k $data -c max_connections=400 -c fsync=on" start >/dev/null
}

start_redis() {
  if redis-cli -h 127.0.0.1 -p "$redis_port" ping >/dev/null 2>&1; then return; fi
  mkdir -p "$dir/redis"
  redis-server --bind 127.0.0.1 --port "$redis_port" --dir "$dir/redis" --daemonize yes \
    --pidfile "$dir/redis/pid" --logfile "$dir/redis/log" --save "" --appendonly no >/dev/null
  for _ in $(seq 50); do
    redis-cli -h 127.0.0.1 -p "$redis_port" ping >/dev/null 2>&1 && return
    sleep 0.1
  done
  echo "redis did not start; see $dir/redis/log" >&2
  exit 1
}

moto_python() {
  if python3 -c 'import moto.server, flask' >/dev/null 2>&1; then
    echo python3
    return
  fi
  local venv="$dir/moto-venv"
  if [ ! -x "$venv/bin/python" ] || ! "$venv/bin/python" -c 'import moto.server' 2>/dev/null; then
    echo "installing moto[server] in $venv" >&2
    python3 -m venv "$venv"
    "$venv/bin/pip" install -q 'moto[server]' >&2
  fi
  echo "$venv/bin/python"
}

start_s3() {
  local url="http://127.0.0.1:$s3_port"
  if ! curl -fsS "$url/" >/dev/null 2>&1; then
    local py
    py=$(moto_python)
    mkdir -p "$dir/s3"
    nohup "$py" -m moto.server -H 127.0.0.1 -p "$s3_port" >"$dir/s3/log" 2>&1 &
    echo $! >"$dir/s3/pid"
    for _ in $(seq 100); do
      curl -fsS "$url/" >/dev/null 2>&1 && break
      sleep 0.2
    done
  fi
  curl -fsS -X PUT "$url/$bucket" >/dev/null
}

stop_all() {
  if [ -f "$dir/pg/postmaster.pid" ]; then
    as_pg "$(pg_config --bindir)/pg_ctl" -D "$dir/pg" -m fast stop >/dev/null 2>&1 || true
  fi
  redis-cli -h 127.0.0.1 -p "$redis_port" shutdown nosave >/dev/null 2>&1 || true
  if [ -f "$dir/s3/pid" ]; then kill "$(cat "$dir/s3/pid")" 2>/dev/null || true; rm -f "$dir/s3/pid"; fi
}

case "${1:-start}" in
  start)
    install_debian
    mkdir -p "$dir"
    start_pg
    start_redis
    start_s3
    cat >"$envfile" <<EOF
export AURUM_TEST_DATABASE_URL=postgres://postgres@127.0.0.1:$pg_port/postgres
export AURUM_TEST_REDIS_URL=redis://127.0.0.1:$redis_port
export AURUM_TEST_S3_ENDPOINT=http://127.0.0.1:$s3_port
export AURUM_TEST_S3_BUCKET=$bucket
EOF
    echo "services up: PostgreSQL :$pg_port, Redis :$redis_port, S3 (moto) :$s3_port; env in $envfile"
    ;;
  stop) stop_all ;;
  env) cat "$envfile" ;;
  *) echo "usage: $0 start|stop|env" >&2; exit 2 ;;
esac
