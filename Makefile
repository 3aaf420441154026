# The two commands of the README:
#   make up    run sessiond with a Postgres (Docker Compose), wait until ready
#   make test  run every test: unit, integration (testcontainers), end to end
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

.PHONY: test unit up down smoke images vet

## up: sessiond and Postgres with Docker Compose on http://localhost:8080
up:
	scripts/compose.sh up

## down: stop them (make down ARGS=-v also removes the database volume)
down:
	scripts/compose.sh down $(ARGS)

## smoke: compose up, sign-in/sign-out through port 8080, down -v
smoke:
	scripts/compose.sh smoke

## test: every test, against real Postgres containers
test: images
	eval "$$(scripts/ensure-images.sh)"; go test $(GO_TEST_FLAGS) ./...

## unit: only the tests that need no Docker
unit:
	go test -race -count=1 ./internal/sessions/...

vet:
	gofmt -l . | (! grep .) && go vet ./...

images:
	scripts/ensure-docker.sh
	scripts/ensure-images.sh >/dev/null
