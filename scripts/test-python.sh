#!/usr/bin/env bash
# Builds the `crm` Python package (crm-py) and runs its checks: the stub check
# (mypy.stubtest against the compiled modules), a strict mypy run over a typed
# usage file, and pytest.
#
# The wheel is built with cargo's dev profile by default (much faster to
# compile on a small machine; the tests don't need speed). Set
# CRM_PY_RELEASE=1 to build and test the optimized wheel instead.
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"
python="${PYTHON:-python3}"

# numpy is a dependency of the package; pandas, polars and pyarrow are what
# the DataFrame and `crm.analytics` tests feed it and read back; tqdm draws
# `progress=True`.
"$python" -m pip install --quiet --disable-pip-version-check \
    "maturin>=1.9,<2" pytest hypothesis mypy "numpy>=1.22" pandas polars pyarrow tqdm

wheels="$(mktemp -d)"
trap 'rm -rf "$wheels"' EXIT
profile=()
if [[ "${CRM_PY_RELEASE:-0}" == 1 ]]; then
    profile=(--release)
fi
# Reuses the workspace target/ directory, so unchanged crates aren't rebuilt.
"$python" -m maturin build "${profile[@]}" --interpreter "$python" \
    -m crm-py/Cargo.toml --out "$wheels"
"$python" -m pip install --quiet --disable-pip-version-check \
    --force-reinstall --no-deps "$wheels"/crm-*.whl

# Checked against the installed package, never the source tree.
# `crm.analytics` re-exports the native `crm._crm.analytics`; its stub is
# `crm/analytics.pyi`.
(cd "$wheels" && "$python" -m mypy.stubtest crm._crm crm.analytics)
"$python" -m mypy --config-file crm-py/pyproject.toml --cache-dir "$wheels/.mypy_cache" \
    crm-py/tests/typing/usage.py

"$python" -m pytest crm-py/tests -q -p no:cacheprovider
