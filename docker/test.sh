#!/usr/bin/env bash
# docker/test.sh: builds the gameopt images and runs them the three ways the
# project ships (tests/docker/CMakeLists.txt registers it with ctest, label
# "docker"):
#   1. images: docker/Dockerfile's "server" target (and "worker", with
#      PyTorch, unless GAMEOPT_DOCKER_TORCH=0);
#   2. containers: a server container on a private network, its health
#      (HEALTHCHECK via gameopt_health_check), a worker container that plays
#      the Dirac-GAN to the end, a C++ and a PyTorch worker sharing one MoG
#      session, the health port refusing the API, a graceful SIGTERM;
#   3. compose: docker/compose.yaml up (server, create, 2 workers, a short
#      MoG experiment), every worker's RESULT, down -v;
#   4. Kubernetes: docker/k8s/*.yaml through `podman kube play` as far as
#      podman supports them (tests/docker/kube_to_podman.py says what it
#      replaces: StatefulSet and Jobs become Pods, the headless Service's
#      DNS names the pods' names, gRPC probes exec probes).
#
# Engine: a docker daemon that answers, else podman (installed from Debian
# when missing, with runc and the ulimits this kind of machine needs, in a
# CONTAINERS_CONF of our own). Without a registry the debian:bookworm base
# is made with debootstrap from the apt mirror. Prints "SKIP: why" and exits
# 0 when no engine can be set up, or when GAMEOPT_SKIP_DOCKER=1.
#
# Environment: GAMEOPT_BUILD_DIR (a bookworm build tree whose programs the
# images take instead of compiling them; ctest sets it; see "programs"
# below), GAMEOPT_DOCKER_TAG (image tag, default "test"),
# GAMEOPT_DOCKER_TORCH=0 (skip the PyTorch image), GAMEOPT_DOCKER_STATE
# (rootfs and containers.conf, default /var/tmp/gameopt-docker),
# GAMEOPT_DOCKER_JOBS (compile jobs in the image's build, default 2).
set -euo pipefail
cd "$(dirname "$0")/.."
repo=$(pwd)

log_tag=docker/test.sh
# shellcheck source=docker/script_log.sh
source docker/script_log.sh

[ "${GAMEOPT_SKIP_DOCKER:-0}" = 1 ] && skip "GAMEOPT_SKIP_DOCKER=1"

tag=${GAMEOPT_DOCKER_TAG:-test}
server_image=localhost/gameopt:$tag
worker_image=localhost/gameopt-worker:$tag
torch=${GAMEOPT_DOCKER_TORCH:-1}
state=${GAMEOPT_DOCKER_STATE:-/var/tmp/gameopt-docker}
prefix=gameopt-test-$$
work=$(mktemp -d)
engine=""

cleanup() {
  set +e
  if [ -z "$engine" ]; then rm -rf "$work"; return; fi
  if [ "$engine" = podman ]; then
    for f in "$work"/kube-*.yaml; do [ -f "$f" ] && podman kube down "$f" >/dev/null 2>&1; done
  fi
  for c in $($engine ps -aq --filter "name=$prefix" 2>/dev/null); do
    $engine rm -f -v "$c" >/dev/null 2>&1
  done
  if [ "$engine" = podman ]; then
    for p in $(podman pod ls -q --filter "name=$prefix" 2>/dev/null); do
      podman pod rm -f "$p" >/dev/null 2>&1
    done
  fi
  for v in $($engine volume ls -q 2>/dev/null | grep "^$prefix"); do
    $engine volume rm -f "$v" >/dev/null 2>&1
  done
  for n in $($engine network ls --format '{{.Name}}' 2>/dev/null | grep "^$prefix"); do
    $engine network rm -f "$n" >/dev/null 2>&1
  done
  rm -rf "$work"
}
trap cleanup EXIT

# ------------------------------------------------- engine and base image
# shellcheck source=docker/engine.sh
source docker/engine.sh

# --------------------------------------------------------------- programs
# With GAMEOPT_BUILD_DIR (ctest sets it to the build tree under test) the
# images take that tree's gameopt_server, gameopt_client and
# gameopt_health_check and the Python package built here from the sources
# (`--build-context programs=...`, docker/Dockerfile's "programs" stage),
# instead of compiling them again in the image's build stage: minutes
# less. The host is bookworm like the image; the ldd check below proves
# the runtime stage has their libraries. GAMEOPT_DOCKER_FROM_SOURCE=1, or
# no GAMEOPT_BUILD_DIR, compiles them in the image as `docker build` does.
programs_context=()
if [ -n "${GAMEOPT_BUILD_DIR:-}" ] && [ "${GAMEOPT_DOCKER_FROM_SOURCE:-0}" != 1 ]; then
  if [ "$engine" = docker ] && ! docker buildx version >/dev/null 2>&1; then
    say "programs: compiled in the image (docker without BuildKit has no --build-context)"
  else
    programs=$work/programs/out
    mkdir -p "$programs/bin"
    for p in server/gameopt_server client/gameopt_client server/gameopt_health_check; do
      [ -x "$GAMEOPT_BUILD_DIR/$p" ] || die "no $GAMEOPT_BUILD_DIR/$p: build it first"
      install -m 0755 "$GAMEOPT_BUILD_DIR/$p" "$programs/bin/"
    done
    (cd client/python && /usr/bin/python3 setup.py -q build --build-base "$work/pybuild" \
      --build-lib "$programs/python") >"$work/python-build.log" 2>&1 ||
      { cat "$work/python-build.log"; die "building the Python package failed"; }
    programs_context=(--build-context "programs=$work/programs")
    say "programs from $GAMEOPT_BUILD_DIR ($(sed -n 's/^CMAKE_BUILD_TYPE:STRING=//p' \
      "$GAMEOPT_BUILD_DIR/CMakeCache.txt" 2>/dev/null)); the image's build stage is skipped"
  fi
fi

# ----------------------------------------------------------------- images
build() {  # build TARGET IMAGE
  local args=(-f docker/Dockerfile --target "$1" -t "$2"
    --build-arg "JOBS=${GAMEOPT_DOCKER_JOBS:-2}" "${programs_context[@]}")
  if [ "$engine" = podman ]; then
    # Docker format keeps the HEALTHCHECK; BuildKit finds the ignore file
    # next to the Dockerfile by itself.
    args+=(--format docker --ignorefile docker/Dockerfile.dockerignore)
  fi
  E build "${args[@]}" . >"$work/build-$1.log" 2>&1 ||
    { tail -40 "$work/build-$1.log"; die "building the $1 image failed"; }
}
stage "building $server_image (target server)"
build server "$server_image"
if [ "$torch" != 0 ]; then
  stage "building $worker_image (target worker, with PyTorch)"
  build worker "$worker_image"
fi
E image prune -f --filter until=72h >/dev/null 2>&1 || true
for image in "$server_image" $([ "$torch" != 0 ] && echo "$worker_image"); do
  missing_libs=$(E run --rm --entrypoint /bin/sh "$image" -c \
    'ldd /usr/local/bin/gameopt_* | grep "not found"' || true)
  [ -z "$missing_libs" ] || die "$image lacks shared libraries: $missing_libs"
done

# ------------------------------------------------------------- containers
stage "containers: server, health, a worker playing to the end"
net=$prefix-net
E network create "$net" >/dev/null
server=$prefix-server
E run -d --name "$server" --network "$net" --health-interval=2s "$server_image" >/dev/null
healthy=""
for _ in $(seq 60); do
  if [ "$engine" = podman ]; then
    # podman runs HEALTHCHECKs from systemd timers; without systemd, ask.
    podman healthcheck run "$server" >/dev/null 2>&1 || true
  fi
  status=$($engine inspect --format '{{.State.Health.Status}}' "$server" 2>/dev/null || true)
  [ "$status" = healthy ] && { healthy=1; break; }
  sleep 1
done
[ -n "$healthy" ] || { E logs "$server"; die "the server container never became healthy ($status)"; }
[ "$($engine inspect --format '{{.Config.User}}' "$server")" = gameopt ] || die "the server does not run as gameopt"
say "server healthy, user gameopt"

client() { E run --rm --network "$net" "$server_image" gameopt_client "$@"; }
client play --server "$server:50051" --game dirac --algorithm conopt --gamma 1 \
  --steps 500 --live=false --plots=false --out /tmp/out >"$work/play.log" ||
  { cat "$work/play.log"; die "the worker container failed"; }
distance=$(sed -n 's/^RESULT.* distance=\([^ ]*\).*/\1/p' "$work/play.log")
awk -v d="$distance" 'BEGIN { exit !(d < 1e-3) }' || die "Dirac-GAN ConOpt ended at distance '$distance'"
say "worker container: Dirac-GAN ConOpt, 500 steps, distance $distance"
if client play --server "$server:50052" --game bilinear --steps 1 --live=false \
  --plots=false --out /tmp/out >"$work/health-api.log" 2>&1; then
  die "the health port serves the API"
fi
grep -q UNIMPLEMENTED "$work/health-api.log" || { cat "$work/health-api.log"; die "unexpected answer of the health port"; }
say "the health port answers UNIMPLEMENTED to the API"

if [ "$torch" != 0 ]; then
  session=$(client create --server "$server:50051" --name mixed --game mog --batch 64 \
    --algorithm conopt --gamma 10 --steps 20 --workers 2 2>/dev/null)
  E run -d --name "$prefix-cpp-worker" --network "$net" "$server_image" gameopt_client work \
    --server "$server:50051" --session "$session" --game mog --batch 64 >/dev/null
  E run --rm --network "$net" "$worker_image" /usr/bin/python3 /opt/gameopt/examples/mog_gan.py \
    --server "$server:50051" --session_name mixed --workers 1 --batch 64 --report_every 0 \
    --out /tmp/mog >"$work/torch.log" 2>&1 || { cat "$work/torch.log"; die "the PyTorch worker failed"; }
  [ "$($engine wait "$prefix-cpp-worker")" = 0 ] || { E logs "$prefix-cpp-worker"; die "the C++ worker failed"; }
  grep -q '^RESULT game=mog-torch .* steps=20 ' "$work/torch.log" || { cat "$work/torch.log"; die "no RESULT from the PyTorch worker"; }
  E logs "$prefix-cpp-worker" 2>&1 | grep -q '^RESULT game=mog .* steps=20 ' || die "no RESULT from the C++ worker"
  say "a C++ and a PyTorch worker container shared session $session to its end"
fi

E stop -t 10 "$server" >/dev/null
[ "$($engine inspect --format '{{.State.ExitCode}}' "$server")" = 0 ] || { E logs "$server"; die "the server did not exit 0 on SIGTERM"; }
say "SIGTERM: the server exited 0"

# ---------------------------------------------------------------- compose
stage "compose: server + create + 2 workers"
compose=()
if [ "$engine" = docker ] && docker compose version >/dev/null 2>&1; then
  compose=(docker compose)
elif [ "$engine" = docker ] && command -v docker-compose >/dev/null; then
  compose=(docker-compose)
elif [ "$engine" = podman ] && command -v podman-compose >/dev/null; then
  compose=(podman-compose)
fi
if [ ${#compose[@]} -eq 0 ]; then
  say "compose: skipped, no compose tool for $engine"
else
  port=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
  export GAMEOPT_IMAGE=$server_image GAMEOPT_WORKERS=2 GAMEOPT_STEPS=300 GAMEOPT_PORT=$port
  project=$prefix  # containers, volume and network names start with it
  dc() { "${compose[@]}" -p "$project" -f docker/compose.yaml "$@"; }
  dc up -d >"$work/compose-up.log" 2>&1 || { cat "$work/compose-up.log"; die "compose up failed"; }
  workers=()
  for _ in $(seq 60); do
    mapfile -t workers < <($engine ps -aq --filter "label=com.docker.compose.project=$project" \
      --filter "label=com.docker.compose.service=worker")
    [ ${#workers[@]} -ge 2 ] && break
    sleep 1
  done
  [ ${#workers[@]} -eq 2 ] || { dc ps; die "compose started ${#workers[@]} workers, not 2"; }
  for w in "${workers[@]}"; do
    code=$(timeout 600 $engine wait "$w" | tail -1)
    logs=$(E logs "$w" 2>&1)
    [ "$code" = 0 ] || { echo "$logs"; dc logs >&2 || true; die "compose worker $w exited $code"; }
    echo "$logs" | grep -q '^RESULT game=mog .* steps=300 ' || { echo "$logs"; die "no RESULT from compose worker $w"; }
    say "compose worker: $(echo "$logs" | grep '^RESULT')"
  done
  # The API is published on the host's loopback.
  if [ -x "${GAMEOPT_HOST_CLIENT:-}" ]; then
    "$GAMEOPT_HOST_CLIENT" play --server "127.0.0.1:$port" --game bilinear --steps 5 \
      --live=false --plots=false --out "$work/host" >/dev/null || die "the published port does not answer"
  fi
  $engine volume ls -q | grep -q "^${project}_state\$" || die "compose made no state volume"
  dc down -v >"$work/compose-down.log" 2>&1 || { cat "$work/compose-down.log"; die "compose down failed"; }
  [ -z "$($engine ps -aq --filter "label=com.docker.compose.project=$project")" ] || die "compose down left containers"
  say "compose: up, 2 workers to DONE, down -v"
fi

# ------------------------------------------------------------- kubernetes
stage "kubernetes manifests with podman kube play"
if [ "$engine" != podman ]; then
  say "kube: skipped, podman kube play needs podman (the images are in docker's store)"
else
  python3 tests/docker/kube_to_podman.py --prefix "$prefix" --image "$server_image" \
    --set GAMEOPT_STEPS=200 --servers "$work/kube-servers.yaml" --jobs "$work/kube-jobs.yaml" \
    docker/k8s/*.yaml
  say "kube: not run by podman 4.3 and replaced: StatefulSet -> Pod + PVC," \
    "Job -> parallelism Pods, headless Service DNS -> pod names, gRPC probes -> exec" \
    "probes (gameopt_health_check), readiness probes dropped"
  E kube play --network "$net" "$work/kube-servers.yaml" >"$work/kube-play.log" 2>&1 ||
    { cat "$work/kube-play.log"; die "podman kube play (servers) failed"; }
  healthy=""
  for _ in $(seq 60); do
    podman healthcheck run "$prefix-gameopt-0-server" >/dev/null 2>&1 && { healthy=1; break; }
    sleep 1
  done
  [ -n "$healthy" ] || { E logs "$prefix-gameopt-0-server"; die "the StatefulSet's pod never became healthy"; }
  E kube play --network "$net" "$work/kube-jobs.yaml" >>"$work/kube-play.log" 2>&1 ||
    { cat "$work/kube-play.log"; die "podman kube play (jobs) failed"; }
  for c in "$prefix-gameopt-create-0-create" "$prefix-gameopt-workers-0-worker" \
    "$prefix-gameopt-workers-1-worker"; do
    code=$(timeout 600 podman wait "$c" | tail -1)
    [ "$code" = 0 ] || { E logs "$c"; die "kube pod container $c exited $code"; }
  done
  for i in 0 1; do
    E logs "$prefix-gameopt-workers-$i-worker" 2>&1 | grep -q '^RESULT game=mog .* steps=200 ' ||
      die "no RESULT from the workers Job's pod $i"
  done
  podman volume inspect "$prefix-state-gameopt-0" >/dev/null || die "no state volume for gameopt-0"
  say "kube: server pod healthy, create Job and 2 worker Job pods played to DONE"
  E kube down "$work/kube-jobs.yaml" >/dev/null 2>&1 || true
  if [ "$torch" != 0 ]; then
    # The Fashion-MNIST experiment's Jobs (docker/k8s/fashion) against the
    # same server pod: the create Job, then the Indexed Job's two workers,
    # each with its completion index as its name and data shard.
    python3 tests/docker/kube_to_podman.py --prefix "$prefix" --image "$server_image" \
      --worker_image "$worker_image" --service gameopt --set GAMEOPT_STEPS=12 \
      --set GAMEOPT_BATCH=16 --jobs "$work/kube-fashion.yaml" docker/k8s/fashion/*.yaml
    E kube play --network "$net" "$work/kube-fashion.yaml" >>"$work/kube-play.log" 2>&1 ||
      { cat "$work/kube-play.log"; die "podman kube play (fashion jobs) failed"; }
    for c in "$prefix-gameopt-fashion-create-0-create" "$prefix-gameopt-fashion-workers-0-worker" \
      "$prefix-gameopt-fashion-workers-1-worker"; do
      code=$(timeout 600 podman wait "$c" | tail -1)
      [ "$code" = 0 ] || { E logs "$c"; die "kube pod container $c exited $code"; }
    done
    for i in 0 1; do
      line=$(E logs "$prefix-gameopt-fashion-workers-$i-worker" 2>&1 | grep '^RESULT fashion_worker') ||
        die "no RESULT from the fashion Indexed Job's pod $i"
      echo "$line" | grep -q "index=$i shards=2 " || die "pod $i did not play shard $i of 2: $line"
    done
    say "kube: fashion create Job and Indexed Job (2 completion indexes as names and shards) played to DONE"
    E kube down "$work/kube-fashion.yaml" >/dev/null 2>&1 || true
  fi
  E kube down "$work/kube-servers.yaml" >/dev/null 2>&1 || true
fi

stage "done"
say "docker/test.sh passed in $(($(date +%s) - started)) s"
