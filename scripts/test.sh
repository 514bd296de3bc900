#!/usr/bin/env bash
# Runs every test of the project: Rust (format, lints, unit, integration and
# doc tests), the Kotlin bindings on the JVM (with the Swift bindings
# generated and their C header compiled), and the Python package.
#
# Needs: Rust (cargo, clippy, rustfmt), Python 3.11 with pip, Java 17 with
# Maven, gcc. Everything else (Python packages, Kotlin, JNA, JUnit) is fetched
# from the package registries.
set -euo pipefail
cd "$(dirname "$0")/.."

step() { printf '\n== %s\n' "$*"; }

step "Rust: formatting and lints"
cargo fmt --all -- --check
cargo clippy --workspace --all-targets --features crm-ffi/arrow -- -D warnings

step "Rust: unit, integration and doc tests"
cargo test --workspace --features crm-ffi/arrow

step "Build the library (with its Arrow tables) and the pinned uniffi-bindgen for the bindings"
cargo build --workspace --features crm-ffi/arrow

step "Kotlin (JVM) and Swift bindings"
bash scripts/test-kotlin.sh

step "Python package"
bash scripts/test-python.sh

step "All tests passed"
