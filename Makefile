# The two commands of the README:
#   make up    run sessiond with a Postgres (Docker Compose), wait until ready
#   make test  run every test: unit, integration (testcontainers), end to end,
#              the JS unit tests and the demo in Chromium
#
# Both make sure a Docker engine answers and the images exist first: the
# official ones where a registry answers, stand-ins built from Debian
# packages where none does (scripts/ensure-images.sh).

SHELL := /bin/bash
.SHELLFLAGS := -eu -o pipefail -c

# This machine kind runs inside a container (/.dockerenv), where
# testcontainers would look for a bridge gateway that is not there; the
# reaper image cannot be pulled offline, so tests terminate their own
# containers.
ifneq ($(wildcard /.dockerenv),)
export TESTCONTAINERS_HOST_OVERRIDE ?= localhost
endif
export TESTCONTAINERS_RYUK_DISABLED ?= true
export DOCKER_BUILDKIT ?= 0

GO_TEST_FLAGS ?= -race -count=1 -timeout 30m -parallel 8

.PHONY: test unit fuzz up down up-ha down-ha smoke images vet bench bench-ha floors demo demo-e2e js-test js-server-test examples-e2e help

## up: sessiond and Postgres with Docker Compose on http://localhost:8080
up:
	scripts/compose.sh up

## down: stop them (make down ARGS=-v also removes the database volume)
down:
	scripts/compose.sh down $(ARGS)

## up-ha: the HA stack: etcd, a Patroni-managed Postgres 15 pair
## (synchronous mode) and two sessiond replicas on :8080 and :8081
up-ha:
	scripts/compose.sh up-ha

## down-ha: stop it (make down-ha ARGS=-v also removes its volumes)
down-ha:
	scripts/compose.sh down-ha $(ARGS)

## smoke: compose up, sign-in/sign-out through port 8080, down -v
smoke:
	scripts/compose.sh smoke

## demo: Postgres, sessiond and the demo app (examples/demo), in the
## foreground; prints the URL. SESSIOND_SESSION_MODE=single|multi (multi).
demo:
	examples/demo/run.sh demo

## demo-e2e: the demo in real Chromium (Playwright), single and multi mode
demo-e2e:
	examples/demo/run.sh e2e

## js-test: the JS package's unit tests, type-check, size budget and type freshness
js-test:
	cd js && npm ci --no-audit --no-fund --loglevel=error && npm run check:types-fresh && npm run typecheck && npm test && npm run size

## js-server-test: @sessiond/js/server and /webhooks against the real
## sessiond (built from this tree) and Postgres, under Node and edge-runtime;
## the check that server entries import no Node builtin
js-server-test: images
	eval "$$(scripts/ensure-images.sh)"; bin=$$(mktemp -d); trap 'rm -rf "$$bin"' EXIT; \
	  go build -o "$$bin/sessiond" ./cmd/sessiond; cd js; \
	  npm ci --no-audit --no-fund --loglevel=error; npm run build --silent; npm run check:server-entries; \
	  SESSIOND_BIN="$$bin/sessiond" npm run test:server

## examples-e2e: examples/next (next build, next start) and examples/astro
## (node adapter) in Debian's Chromium against the real sessiond
examples-e2e:
	examples/e2e/run.sh

## test: every test, against real Postgres containers; then the JS
## package's unit tests and the demo's end-to-end tests in Chromium
test: images
	eval "$$(scripts/ensure-images.sh)"; go test $(GO_TEST_FLAGS) ./...
	$(MAKE) js-test js-server-test demo-e2e examples-e2e

## bench: seed a Postgres container, run the real sessiond on 127.0.0.1 and
## measure the hot paths against the raw pgx lookup (BENCHMARKS.md).
## Flags through ARGS, e.g. make bench ARGS="-sessions 1000000 -json out.json"
bench: images
	eval "$$(scripts/ensure-images.sh)"; go run ./cmd/sessiond-bench $(ARGS)

## bench-ha: sign-in and sign-out on one Postgres, on a Patroni pair in
## synchronous mode and on the pair with its standby 1 ms away each way
## (ARGS="-standby-delay 5ms"), side by side (BENCHMARKS.md); needs root
## and the Debian packages patroni, etcd-server, postgresql-15
bench-ha:
	go run ./cmd/sessiond-ha-bench $(ARGS)

## floors: what Postgres alone costs for sign-in, sign-out and sign out
## everywhere, sessiond's guarantees added back one at a time (pgbench, psql)
floors: images
	scripts/floors.sh

# Fuzz targets, by package. `go test -fuzz` takes one target at a time;
# under plain `go test` each runs only its seeds (f.Add and
# testdata/fuzz/<target>/), so `make test` covers those too.
#
# Budgets are counts of executions, not durations: with a duration, Go
# 1.26's fuzz coordinator can fail a target with a bare "context deadline
# exceeded" as the time runs out (golang/go#75804, fixed in Go 1.27). The
# counts are about 10 s each here; a duration such as 30s also works.
FUZZ_SESSIONS_BUDGET ?= 1000000x
FUZZ_API_BUDGET ?= 2000x
FUZZ_SESSIONS := FuzzIDs FuzzUserID FuzzWellFormedToken FuzzCheckRedirectURL FuzzParseOrigin FuzzParseListQuery FuzzSignInInput
# The api targets each run one fuzzing worker (-parallel 1): every worker
# process starts its own Postgres container, and one gets more done.
FUZZ_API := FuzzSignInBody FuzzListQuery FuzzEndingQuery FuzzPathIDs FuzzCredentials

## fuzz: run every fuzz target for its budget (the api ones against Postgres)
fuzz: images
	eval "$$(scripts/ensure-images.sh)"; \
	for t in $(FUZZ_SESSIONS); do go test -timeout 10m -run '^$$' -fuzz "^$$t\$$" -fuzztime $(FUZZ_SESSIONS_BUDGET) ./internal/sessions || exit 1; done; \
	for t in $(FUZZ_API); do go test -timeout 10m -run '^$$' -fuzz "^$$t\$$" -fuzztime $(FUZZ_API_BUDGET) -parallel 1 ./api || exit 1; done

## unit: every package whose tests need no Docker (no Postgres container):
## the rules, the session's JSON form, the events hub and webhooks, the
## wiring's config and logging, the demo backend and the openapi.yaml checks
UNIT_PACKAGES := . ./cmd/sessiond ./examples/demo ./internal/events ./internal/sessions ./internal/wire
unit:
	go test -race -count=1 $(UNIT_PACKAGES)

## vet: gofmt -l (must list nothing) and go vet
vet:
	gofmt -l . | (! grep .) && go vet ./...

## images: a Docker engine that answers, and the images (stand-ins built
## from Debian packages where no registry answers)
images:
	scripts/ensure-docker.sh
	scripts/ensure-images.sh >/dev/null

# Not the default goal: plain `make` stays `make up`, the first target.
## help: every target with its description (these ## lines)
help:
	@awk '/^## / { line = substr($$0, 4); \
	    if (match(line, /^[a-z0-9-]+: /)) printf "%-15s %s\n", substr(line, 1, RLENGTH - 2), substr(line, RLENGTH + 1); \
	    else printf "%-15s %s\n", "", line }' $(firstword $(MAKEFILE_LIST))
