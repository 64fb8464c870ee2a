#!/usr/bin/env bash
# The real-model end-to-end test (issue 13): llama-cpp-python's OpenAI-compatible server with
# Gemma 3 270M, every flow of the service against it. Usage: bash scripts/realmodel.sh
#
# llama-cpp-python ships only source on PyPI: building it takes about 10 minutes on 2 cores,
# once. The wheel is kept in $CRYSTALLISE_WHEEL_CACHE (default ~/.cache/crystallise/wheels),
# where a re-run (and CI on the same machine) finds it; the server's virtual environment is
# .llama-venv (git-ignored), installed from tests/realmodel/requirements.lock.
set -euo pipefail
cd "$(dirname "$0")/.."

LLAMA_VERSION=0.3.36
# A portable build (GGML_NATIVE=OFF: AVX2/FMA/F16C, no AVX-512/AMX kernels): the native build
# crashed in libggml-cpu on the first generation on a host with AMX (2026-12-06). Its own
# cache folder, so a native wheel cached by an older script is never picked up.
WHEELS="${CRYSTALLISE_WHEEL_CACHE:-$HOME/.cache/crystallise/wheels}/portable"
VENV=.llama-venv
mkdir -p "$WHEELS"

if ! ls "$WHEELS"/llama_cpp_python-"$LLAMA_VERSION"-*.whl >/dev/null 2>&1; then
  echo "== building llama-cpp-python $LLAMA_VERSION (once; about 10 minutes on 2 cores)"
  build="$(mktemp -d)"
  python3 -m venv "$build/venv"
  "$build/venv/bin/pip" install -q --upgrade pip wheel
  CMAKE_ARGS="-DGGML_NATIVE=OFF" CMAKE_BUILD_PARALLEL_LEVEL="$(nproc)" \
    "$build/venv/bin/pip" wheel -q --no-cache-dir --no-deps -w "$WHEELS" "llama-cpp-python==$LLAMA_VERSION"
  rm -rf "$build"
fi

if [ ! -x "$VENV/bin/python" ]; then
  python3 -m venv "$VENV"
fi
"$VENV/bin/pip" install -q --upgrade pip
"$VENV/bin/pip" install -q --find-links "$WHEELS" -r tests/realmodel/requirements.lock
# always the cached portable wheel, even over one an older script installed natively built
"$VENV/bin/pip" install -q --no-deps --force-reinstall "$WHEELS"/llama_cpp_python-"$LLAMA_VERSION"-*.whl

python3 -m venv .uv && .uv/bin/pip install -q uv==0.13.9
CRYSTALLISE_LLAMA_PYTHON="$PWD/$VENV/bin/python" \
  .uv/bin/uv run --frozen pytest tests/realmodel -rs "$@"
