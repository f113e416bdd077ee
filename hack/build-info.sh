#!/bin/sh
# Writes dist/build-info.json: the commit dist/ was built from, and whether the tree had changes then
# (`berthd version` prints it). Outside a git checkout the commit is "unknown".
set -eu
cd "$(dirname "$0")/.."
commit=$(git rev-parse HEAD 2>/dev/null || echo unknown)
dirty=false
if [ "$commit" != unknown ] && [ -n "$(git status --porcelain --untracked-files=no 2>/dev/null)" ]; then dirty=true; fi
mkdir -p dist
printf '{"commit":"%s","dirty":%s}\n' "$commit" "$dirty" > dist/build-info.json.tmp
mv dist/build-info.json.tmp dist/build-info.json
