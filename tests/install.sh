#!/usr/bin/env bash
# Installs nabla into a temporary prefix and uses it as a user would, with nothing but the prefix:
# the installed tools run without LD_LIBRARY_PATH (their rpath), and a program outside the tree
# (tests/integration/app.c) builds with `pkg-config --cflags --libs nabla` and runs, finding the
# library through pkg-config's libdir (-Wl,-rpath). The build tree's uninstalled .pc is checked too.
#   tests/install.sh SOURCE_DIR BUILD_DIR
set -euo pipefail
src=$1 build=$2
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
prefix=$tmp/prefix

echo "== configure, build and install into $prefix (library and tools)"
meson setup "$tmp/build" "$src" --prefix="$prefix" --buildtype=release -Dtests=disabled -Dexamples=disabled \
    -Dmpi=disabled >"$tmp/setup.log" || { cat "$tmp/setup.log"; exit 1; }
meson compile -C "$tmp/build" >"$tmp/compile.log" || { cat "$tmp/compile.log"; exit 1; }
meson install -C "$tmp/build" --quiet
unset LD_LIBRARY_PATH
libdir=$(find "$prefix" -name 'libnabla.so.0' -printf '%h\n')
ls -l "$libdir"/libnabla.so*

echo "== installed tools from the prefix"
"$prefix/bin/nabla-train" --help >"$tmp/help.txt"
head -n 1 "$tmp/help.txt"
"$prefix/bin/nabla-gradcheck" --op nb_matmul

echo "== an external program through pkg-config only"
export PKG_CONFIG_PATH=$libdir/pkgconfig
cflags=$(pkg-config --cflags nabla) libs=$(pkg-config --libs nabla) pc_libdir=$(pkg-config --variable=libdir nabla)
echo "pkg-config: $cflags $libs (libdir $pc_libdir)"
[[ $pc_libdir == "$libdir" ]] || { echo "libdir $pc_libdir is not where the library is ($libdir)"; exit 1; }
cc -std=c11 -Wall -Wextra -Werror "$src/tests/integration/app.c" -o "$tmp/app" $cflags $libs -Wl,-rpath,"$pc_libdir"
"$tmp/app"
readelf -d "$tmp/app" | grep -q 'libnabla.so.0' || { echo "app does not link libnabla.so.0"; exit 1; }

echo "== the same program against the build tree's uninstalled .pc"
export PKG_CONFIG_PATH=$build/meson-uninstalled
cflags=$(pkg-config --cflags nabla-uninstalled) libs=$(pkg-config --libs nabla-uninstalled)
echo "pkg-config: $cflags $libs"
cc -std=c11 -Wall -Wextra -Werror "$src/tests/integration/app.c" -o "$tmp/app-uninstalled" $cflags $libs
LD_LIBRARY_PATH=$(pkg-config --libs-only-L nabla-uninstalled | sed 's/^ *-L//; s/ *$//') "$tmp/app-uninstalled"
