#!/usr/bin/env bash
# cli_install.sh - `cmake --install` of this build tree into a temporary
# prefix, then a consumer program outside the tree (tests/install/) built
# against the installed package four ways and run:
#   find_package(ecf8) -> ecf8::ecf8 (shared) and ecf8::ecf8_static,
#   pkg-config ecf8    -> shared (-lecf8) and static (libecf8.a + --static).
# Also checks the installed files and the installed CLI, and builds (and,
# with an OpenCL device, runs) examples/decode_and_matmul and
# examples/load_into_buffer against it; with
# ECF8_REQUIRE_DEVICE set, a missing device fails instead of skipping the run.
# And checks that the installed libecf8.so exports exactly the functions the
# installed headers declare.
#
# usage: cli_install.sh ECF8_CLI   (CTest passes the built ecf8 binary; the
# build tree is $ECF8_BUILD_DIR, else the CLI's directory.)
set -euo pipefail

CLI=${1:?usage: cli_install.sh ECF8_CLI}
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
SRC=$(cd "$HERE/.." && pwd)
BUILD=${ECF8_BUILD_DIR:-$(cd "$(dirname "$CLI")" && pwd)}
DATA=${ECF8_TEST_DATA:-$SRC/tests/data}
INPUT=$DATA/minilm-slice-e5m2.safetensors

TMP=$(mktemp -d "${TMPDIR:-/tmp}/ecf8-install-XXXXXX")
trap 'rm -rf "$TMP"' EXIT
PREFIX=$TMP/prefix

fail() { echo "cli_install: FAIL: $*" >&2; exit 1; }
step() { echo "== $*"; }

cache_value() { sed -n "s/^$1:[A-Z]*=//p" "$BUILD/CMakeCache.txt"; }
[ -f "$BUILD/CMakeCache.txt" ] || fail "no CMakeCache.txt in $BUILD (set ECF8_BUILD_DIR)"
CC_USED=$(cache_value CMAKE_C_COMPILER)
CC_USED=${CC_USED:-cc}
# A sanitizer build installs instrumented libraries: consumers link the runtime too.
SAN_FLAGS=""
if [ "$(cache_value ECF8_SANITIZE)" = ON ]; then
    SAN_FLAGS="-fsanitize=address,undefined"
    # The OpenCL runtime (PoCL + LLVM) keeps compiler state until exit.
    printf 'leak:libpocl.so\nleak:libLLVM\nleak:libOpenCL.so\n' >"$TMP/lsan.supp"
    export LSAN_OPTIONS="suppressions=$TMP/lsan.supp${LSAN_OPTIONS:+:$LSAN_OPTIONS}"
fi
[ "$(cache_value ECF8_TSAN)" = ON ] && SAN_FLAGS="-fsanitize=thread"
OPENCL=$(cache_value ECF8_OPENCL)

step "install $BUILD into $PREFIX"
cmake --install "$BUILD" --prefix "$PREFIX" >"$TMP/install.log" 2>&1 ||
    { cat "$TMP/install.log"; fail "cmake --install"; }

PC=$(find "$PREFIX" -name ecf8.pc | head -1)
CONFIG=$(find "$PREFIX" -name ecf8Config.cmake | head -1)
[ -n "$PC" ] || fail "ecf8.pc not installed"
[ -n "$CONFIG" ] || fail "ecf8Config.cmake not installed"
LIBDIR=$(dirname "$(dirname "$PC")")
for f in "$LIBDIR/libecf8.a" "$LIBDIR/libecf8.so" "$PREFIX/include/ecf8.h" "$PREFIX/bin/ecf8" \
         "$(dirname "$CONFIG")/ecf8ConfigVersion.cmake" "$(dirname "$CONFIG")/ecf8Targets.cmake"; do
    [ -e "$f" ] || fail "missing installed file ${f#"$PREFIX"/}"
done
if [ "$OPENCL" = ON ]; then
    [ -e "$PREFIX/include/ecf8_cl.h" ] || fail "missing installed ecf8_cl.h"
fi
"$PREFIX/bin/ecf8" version >/dev/null || fail "installed CLI does not run"
echo "installed: $(cd "$PREFIX" && find . -type f | sort | tr '\n' ' ')"

step "libecf8.so exports exactly the functions of the installed headers"
# Every function declared in ecf8.h / ecf8_cl.h must be exported (a missing
# ECF8_API hides it) and nothing else may be (internal helpers stay
# hidden).  Names starting with _ are left out: sanitizer builds add their
# instrumentation symbols to the library.
command -v nm >/dev/null || fail "nm not found"
HEADERS=("$PREFIX/include/ecf8.h")
[ "$OPENCL" = ON ] && HEADERS+=("$PREFIX/include/ecf8_cl.h")
# Comments dropped first: they name functions too, with parentheses.
perl -0777 -pe 's{/\*.*?\*/}{}gs' "${HEADERS[@]}" | grep -oE '\becf8_[a-z0-9_]+\(' |
    tr -d '(' | sort -u >"$TMP/declared.txt"
nm -D --defined-only "$LIBDIR/libecf8.so" >"$TMP/nm.txt" || fail "nm -D libecf8.so"
awk '{print $NF}' "$TMP/nm.txt" | grep -v '^_' | sed 's/@.*//' | sort -u >"$TMP/exported.txt"
[ -s "$TMP/declared.txt" ] || fail "no function declarations found in the installed headers"
if ! diff "$TMP/declared.txt" "$TMP/exported.txt" >"$TMP/exports.diff"; then
    echo "< declared, not exported; > exported, not declared:" >&2
    grep '^[<>]' "$TMP/exports.diff" >&2
    fail "libecf8.so exports differ from the public headers"
fi
echo "exports: $(wc -l <"$TMP/exported.txt") functions, all declared in the public headers"

run_consumer() { # name binary
    local out=$TMP/$1.ecf8
    LD_LIBRARY_PATH="$LIBDIR${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}" "$2" "$INPUT" "$out" >"$TMP/$1.log" 2>&1 ||
        { cat "$TMP/$1.log"; fail "$1 failed"; }
    grep -q "consumer: ok" "$TMP/$1.log" || { cat "$TMP/$1.log"; fail "$1 did not finish"; }
    echo "$1: ok"
}

step "consumer via find_package(ecf8)"
cmake -S "$SRC/tests/install" -B "$TMP/cmake-build" -DCMAKE_PREFIX_PATH="$PREFIX" \
    -DCMAKE_C_COMPILER="$CC_USED" -DCMAKE_BUILD_TYPE=Release \
    -DCMAKE_C_FLAGS="$SAN_FLAGS" -DCMAKE_EXE_LINKER_FLAGS="$SAN_FLAGS" >"$TMP/cmake.log" 2>&1 ||
    { cat "$TMP/cmake.log"; fail "find_package(ecf8) configure"; }
cmake --build "$TMP/cmake-build" >"$TMP/cmake-build.log" 2>&1 ||
    { cat "$TMP/cmake-build.log"; fail "find_package(ecf8) build"; }
run_consumer cmake_shared "$TMP/cmake-build/consumer_shared"
run_consumer cmake_static "$TMP/cmake-build/consumer_static"
if command -v ldd >/dev/null; then
    # ldd's output captured first: `ldd | grep -q` under pipefail fails
    # whenever grep exits before ldd has written everything (SIGPIPE).
    ldd "$TMP/cmake-build/consumer_static" >"$TMP/ldd-static.txt"
    ldd "$TMP/cmake-build/consumer_shared" >"$TMP/ldd-shared.txt"
    grep -q libecf8 "$TMP/ldd-static.txt" && fail "consumer_static links libecf8.so"
    grep -q libecf8 "$TMP/ldd-shared.txt" || fail "consumer_shared does not link libecf8.so"
fi

step "consumer via pkg-config ecf8"
command -v pkg-config >/dev/null || fail "pkg-config not found"
PKG_CONFIG_PATH="$(dirname "$PC")${PKG_CONFIG_PATH:+:$PKG_CONFIG_PATH}"
export PKG_CONFIG_PATH
pkg-config --exists --print-errors ecf8 || fail "pkg-config cannot resolve ecf8"
[ "$(pkg-config --modversion ecf8)" = "$("$PREFIX/bin/ecf8" version | grep -o '[0-9]*\.[0-9]*\.[0-9]*' | head -1)" ] ||
    fail "pkg-config version differs from the CLI's"
# shellcheck disable=SC2046
"$CC_USED" $SAN_FLAGS -o "$TMP/pc_shared" "$SRC/tests/install/consumer.c" \
    $(pkg-config --cflags --libs ecf8) || fail "pkg-config shared build"
run_consumer pkgconfig_shared "$TMP/pc_shared"
STATIC_LIBS=$(pkg-config --static --libs ecf8 | sed 's/-lecf8\b//')
# shellcheck disable=SC2046,SC2086
"$CC_USED" $SAN_FLAGS -o "$TMP/pc_static" "$SRC/tests/install/consumer.c" \
    $(pkg-config --cflags ecf8) "$LIBDIR/libecf8.a" $STATIC_LIBS || fail "pkg-config static build"
run_consumer pkgconfig_static "$TMP/pc_static"

if [ "$OPENCL" = ON ]; then
    step "examples/ against the installed package"
    if ! cmake -S "$SRC/examples" -B "$TMP/examples" -DCMAKE_PREFIX_PATH="$PREFIX" \
            -DCMAKE_C_COMPILER="$CC_USED" -DCMAKE_BUILD_TYPE=Release \
            -DCMAKE_C_FLAGS="$SAN_FLAGS" -DCMAKE_EXE_LINKER_FLAGS="$SAN_FLAGS" >"$TMP/ex.log" 2>&1 ||
       ! cmake --build "$TMP/examples" >>"$TMP/ex.log" 2>&1; then
        cat "$TMP/ex.log"
        fail "examples build"
    fi
    "$PREFIX/bin/ecf8" compress "$DATA/minilm-slice-e4m3.safetensors" "$TMP/e4m3.ecf8" >/dev/null
    for example in decode_and_matmul load_into_buffer; do
        rc=0
        LD_LIBRARY_PATH="$LIBDIR${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}" \
            "$TMP/examples/$example" "$TMP/e4m3.ecf8" >"$TMP/ex-run.log" 2>&1 || rc=$?
        if [ $rc -eq 0 ]; then
            echo "$example: ok ($(tail -1 "$TMP/ex-run.log"))"
        elif grep -qE "no OpenCL (platform|device)|NO_DEVICE" "$TMP/ex-run.log" &&
             [[ -z "${ECF8_REQUIRE_DEVICE:-}" || "$ECF8_REQUIRE_DEVICE" = 0 ]]; then
            echo "$example: built; not run (no OpenCL device)"
        else
            cat "$TMP/ex-run.log"
            fail "$example"
        fi
    done
fi
echo "cli_install: all consumers built against the installed package and passed"
