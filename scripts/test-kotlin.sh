#!/usr/bin/env bash
# Tests the uniffi bindings of crm-ffi:
#   1. generates Kotlin and Swift into target/bindings/{kotlin,swift} with the
#      workspace's pinned uniffi-bindgen,
#   2. checks that the generated C header compiles (what Swift imports),
#   3. runs the Kotlin JUnit tests on the JVM through Maven.
#
# Expects `cargo build --workspace --features crm-ffi/arrow` (debug) to have
# run; builds crm-ffi and uniffi-bindgen itself only if their outputs are
# missing. Needs a JDK 17+, Maven, gcc, python3 with its sqlite3 module
# (BadInputTest's second process that locks a file), and Maven Central (Maven
# fetches its plugins, JUnit and Arrow Java on first run). The benchmark
# (MobileBench) is left out; scripts/bench-mobile.sh runs it.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"  # the bindgen reads `cargo metadata` (to find crm-ffi/uniffi.toml)

TARGET_DIR="${CARGO_TARGET_DIR:-$ROOT/target}"
case "$TARGET_DIR" in /*) ;; *) TARGET_DIR="$ROOT/$TARGET_DIR" ;; esac
LIB_DIR="$TARGET_DIR/debug"
case "$(uname -s)" in
    Darwin) LIB="$LIB_DIR/libcrm_ffi.dylib" ;;
    *) LIB="$LIB_DIR/libcrm_ffi.so" ;;
esac
BINDGEN="$LIB_DIR/uniffi-bindgen"
OUT="$ROOT/target/bindings"

if [[ ! -f "$LIB" || ! -x "$BINDGEN" ]]; then
    echo "== building crm-ffi and uniffi-bindgen (not built yet)"
    cargo build -p crm-ffi -p uniffi-bindgen --features crm-ffi/arrow
fi

echo "== generating Kotlin and Swift bindings into $OUT"
rm -rf "$OUT/kotlin" "$OUT/swift"
"$BINDGEN" generate --library "$LIB" --language kotlin --no-format --out-dir "$OUT/kotlin"
"$BINDGEN" generate --library "$LIB" --language swift --no-format --out-dir "$OUT/swift"

echo "== checking the C header of the Swift binding"
# The header uses clang's nullability qualifiers; gcc gets them defined away.
# Included from a translation unit rather than compiled directly, which
# would warn about `#pragma once` in a main file.
header="$(cd "$OUT/swift" && ls -- *FFI.h)"
echo "#include \"$header\"" | gcc -x c -std=c11 -Wall -Wextra -Werror -pedantic \
    -D_Nullable= -D_Nonnull= -I "$OUT/swift" -fsyntax-only -
echo "$header compiles"

echo "== running the Kotlin tests (JUnit 5 on the JVM)"
cd "$ROOT/crm-ffi/tests/bindings/kotlin"
mvn -B -q -ntp \
    -Dorg.slf4j.simpleLogger.log.org.apache.maven.plugin.surefire=info \
    -Duniffi.gen.dir="$OUT/kotlin" \
    -Dnative.lib.dir="$LIB_DIR" \
    test
