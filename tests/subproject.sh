#!/usr/bin/env bash
# Builds a tiny parent project that uses nabla as a Meson subproject, as the README's "Using nabla
# from your project" says, in the parent's default debug build, and checks that only the library is
# built (no tests, tools or examples, so the parent needs no Check), at -O2 while the parent's own
# code is at -O0, and that the parent's program (tests/integration/app.c) runs.
#   tests/subproject.sh SOURCE_DIR
set -euo pipefail
src=$1
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
mkdir -p "$tmp/parent/subprojects"
ln -s "$src" "$tmp/parent/subprojects/nabla"
cp "$src/tests/integration/app.c" "$tmp/parent/"
cat >"$tmp/parent/meson.build" <<'MESON'
project('parent', 'c', default_options : ['buildtype=debug'])
nabla_dep = dependency('nabla', fallback : ['nabla', 'nabla_dep'])
app = executable('app', 'app.c', dependencies : nabla_dep)
test('app', app)
MESON
cat "$tmp/parent/meson.build"

echo "== meson setup (nabla forced to the subproject)"
cd "$tmp/parent"
meson setup build --force-fallback-for=nabla >"$tmp/setup.log" || { cat "$tmp/setup.log"; exit 1; }
grep -E "^(Executing subproject|Subproject nabla|nabla\| Build targets)" "$tmp/setup.log" || true
if grep -qi "dependency check" build/meson-logs/meson-log.txt; then
    echo "the subproject looked for Check"; exit 1
fi

echo "== targets"
targets=$(meson introspect build --targets | python3 -c 'import json, sys; print(" ".join(sorted(t["name"] for t in json.load(sys.stdin))))')
echo "$targets"
[[ $targets == "app nabla" ]] || { echo "expected only the parent's app and libnabla"; exit 1; }

echo "== optimization levels"
python3 - build/compile_commands.json <<'PY'
import json, re, sys
levels = {}
for c in json.load(open(sys.argv[1])):
    opt = re.findall(r"(?:^| )-O(\S)", c["command"])
    levels.setdefault("nabla" if "/subprojects/nabla/" in c["file"] else "parent", set()).add(opt[-1] if opt else "none")
print(levels)
assert levels["parent"] == {"0"}, "the parent should keep its -O0"
assert levels["nabla"] == {"2"}, "nabla should be built at -O2 in a debug parent"
PY

echo "== build and meson test"
meson compile -C build >"$tmp/compile.log" || { cat "$tmp/compile.log"; exit 1; }
meson test -C build --print-errorlogs
./build/app
