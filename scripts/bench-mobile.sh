#!/usr/bin/env bash
# The mobile benchmark (figures in BENCHMARKS.md, "Mobile"):
#   1. builds the release library (crm-ffi) and the pinned uniffi-bindgen,
#   2. runs examples/bench_mobile.rs: creates (or reuses) a CRM file of
#      100,000 customers and times, in Rust, opening it, the first page of 50
#      customer cards, and a few small calls,
#   3. runs the Kotlin benchmark (MobileBench, JUnit on the JVM through
#      Maven) on the same file through the binding, printing the same calls'
#      time per call and the ratio Kotlin / Rust,
#   4. prints the size of the stripped library.
#
# Usage: scripts/bench-mobile.sh [customers]          (default 100000)
# Environment:
#   PROFILE=mobile   build and measure the size-optimized profile apps ship
#                    ([profile.mobile] in Cargo.toml, with the SQLite
#                    features the CRM does not use left out) instead of
#                    release
# Needs what scripts/test-kotlin.sh needs (JDK 17+, Maven, Maven Central).
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"

CUSTOMERS="${1:-100000}"
PROFILE="${PROFILE:-release}"
TARGET_DIR="${CARGO_TARGET_DIR:-$ROOT/target}"
case "$TARGET_DIR" in /*) ;; *) TARGET_DIR="$ROOT/$TARGET_DIR" ;; esac
OUT="$TARGET_DIR/bench-mobile"
DB="$OUT/crm-$CUSTOMERS.crm"
case "$(uname -s)" in
    Darwin) LIB_NAME=libcrm_ffi.dylib ;;
    *) LIB_NAME=libcrm_ffi.so ;;
esac
# The builds of $PROFILE get these in the environment; the host debug build
# does not (a different value would rebuild SQLite for every other build).
sqlite_flags=()
if [[ "$PROFILE" == mobile ]]; then
    # SQLite features the CRM never uses (it needs FTS5 and JSON), as in
    # crm-ffi/README.md.
    sqlite_flags=("LIBSQLITE3_FLAGS=-USQLITE_ENABLE_FTS3 -USQLITE_ENABLE_FTS3_PARENTHESIS -USQLITE_ENABLE_RTREE -USQLITE_ENABLE_DBSTAT_VTAB -USQLITE_SOUNDEX -USQLITE_ENABLE_COLUMN_METADATA -USQLITE_ENABLE_LOAD_EXTENSION -DSQLITE_OMIT_LOAD_EXTENSION -DSQLITE_OMIT_DEPRECATED -DSQLITE_OMIT_SHARED_CACHE")
fi
LIB_DIR="$TARGET_DIR/$PROFILE"

echo "== building crm-ffi ($PROFILE), and the host debug build the bindings are generated from"
env "${sqlite_flags[@]}" cargo build --profile "$PROFILE" -p crm-ffi
# A stripped library (profile mobile) has no uniffi metadata left to read;
# the bindings depend only on the interface, so any build of it will do.
cargo build -p crm-ffi -p uniffi-bindgen

echo "== Rust: examples/bench_mobile.rs ($CUSTOMERS customers, $PROFILE)"
mkdir -p "$OUT"
env "${sqlite_flags[@]}" cargo run -q --profile "$PROFILE" -p crm-core --example bench_mobile -- --db "$DB" "$CUSTOMERS" \
    | tee "$OUT/rust.txt"

# BENCH rust.open_ns=123 -> -Dcrm.bench.rust.open=123
rust_props="$(sed -n 's/^BENCH rust\.\([a-z_]*\)_ns=\([0-9]*\)$/-Dcrm.bench.rust.\1=\2/p' "$OUT/rust.txt" | tr '\n' ' ')"

echo "== Kotlin: MobileBench through the binding ($PROFILE library)"
"$TARGET_DIR/debug/uniffi-bindgen" generate --library "$TARGET_DIR/debug/$LIB_NAME" --language kotlin \
    --no-format --out-dir "$OUT/kotlin"
(
    cd "$ROOT/crm-ffi/tests/bindings/kotlin"
    mvn -B -q -ntp \
        -Dorg.slf4j.simpleLogger.log.org.apache.maven.plugin.surefire=info \
        -Dbuild.dir="$OUT/maven" \
        -Duniffi.gen.dir="$OUT/kotlin" \
        -Dnative.lib.dir="$LIB_DIR" \
        -Dtest=MobileBench -Dtest.excluded.tags=none -Dsurefire.failIfNoSpecifiedTests=false \
        -Dcrm.bench.file="$DB" \
        -Dbench.argLine="$rust_props" \
        test
) | tee "$OUT/kotlin.txt"

echo "== size of the stripped library ($PROFILE, $(uname -m))"
cp "$LIB_DIR/$LIB_NAME" "$OUT/$LIB_NAME"
if command -v llvm-strip >/dev/null; then llvm-strip "$OUT/$LIB_NAME"; else strip "$OUT/$LIB_NAME"; fi
bytes="$(wc -c <"$OUT/$LIB_NAME")"
awk -v b="$bytes" 'BEGIN { printf "%s stripped: %d bytes (%.2f MB, %.2f MiB)\n", "'"$LIB_NAME"'", b, b / 1e6, b / 1048576 }'
