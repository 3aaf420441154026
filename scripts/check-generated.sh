#!/usr/bin/env bash
# Fails when client/gen/sessiond.gen.go is not what `go generate ./client`
# makes from openapi.yaml now (someone changed the document and forgot to
# regenerate, or edited the generated file by hand). Regenerates into a
# temporary directory with the same configuration and diffs; changes
# nothing in the tree.
set -euo pipefail
cd "$(dirname "$0")/.."
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
mkdir -p "$tmp/gen"
sed 's|^output: .*|output: '"$tmp"'/gen/sessiond.gen.go|' client/gen/oapi-codegen.yaml >"$tmp/oapi-codegen.yaml"
(cd client && go tool oapi-codegen -config "$tmp/oapi-codegen.yaml" ../openapi.yaml)
if ! diff -u client/gen/sessiond.gen.go "$tmp/gen/sessiond.gen.go"; then
  echo "check-generated: client/gen/sessiond.gen.go is stale; run: go generate ./client" >&2
  exit 1
fi
echo "check-generated: client/gen/sessiond.gen.go matches openapi.yaml"
