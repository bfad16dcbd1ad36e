#!/usr/bin/env bash
# Installs the SM3Det stack into the current Python environment.
#
#   bash tools/install.sh                 # idempotent: a second run only checks
#   bash tools/install.sh --compiled-ops  # also build mmcv's C++ ops (10-50 min)
#
# Order: torch, mmengine, mmcv 2.0.1, mmdet 3.1.0 / mmrotate 1.0.0rc1, onnx /
# onnxruntime (ONNX export and runtime), then
# this package (editable). mmcv comes as `mmcv-lite` (its pure-Python part)
# by default: its kernels are then sm3det_compat's PyTorch ones, and nothing
# is compiled. With --compiled-ops (or SM3DET_COMPILED_OPS=1) mmcv is built
# from source with its C++ (and, with a CUDA torch, CUDA) kernels; the wheel
# is cached under $SM3DET_CACHE (default ~/.cache/sm3det), keyed by torch
# version and CUDA, so a rerun or a fresh clone reuses it. An installed
# compiled mmcv is always kept.
#
# Environment: PYTHON (default python3), SM3DET_CACHE, SM3DET_COMPILED_OPS,
# MAX_JOBS (mmcv build).
set -Eeuo pipefail

COMPILED_OPS=${SM3DET_COMPILED_OPS:-0}
for arg in "$@"; do
    case $arg in
        --compiled-ops) COMPILED_OPS=1 ;;
        *) echo "usage: bash tools/install.sh [--compiled-ops]" >&2; exit 2 ;;
    esac
done

PY=${PYTHON:-python3}
export PIP_ROOT_USER_ACTION=ignore
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
CACHE=${SM3DET_CACHE:-$HOME/.cache/sm3det}
MMCV_VERSION=2.0.1
TORCH_CPU_VERSION=2.13.0

say() { echo "[install] $*"; }
die() { echo "[install] ERROR: $*" >&2; exit 1; }
# This machine's pip config lists local mirrors that warn for every package.
pip_q() {
    "$PY" -m pip install -q --disable-pip-version-check "$@" 2>&1 |
        { grep -v 'is ignored: it is neither a file nor a directory' || true; } ||
        die "pip install $* failed (see above; no access to the package index?)"
}
pyok() { "$PY" -c "$1" >/dev/null 2>&1; }

command -v "$PY" >/dev/null || die "no '$PY' on PATH (set PYTHON=/path/to/python)"
pyok 'import sys; assert sys.version_info >= (3, 8)' || die "Python >= 3.8 is required"
"$PY" -m pip --version >/dev/null 2>&1 || die "pip is not available for $PY"

check_args=(--root "$ROOT")
[[ $COMPILED_OPS == 1 ]] && check_args+=(--compiled-ops)

# Fast path: everything present and this checkout is the one installed.
if "$PY" "$ROOT/tools/misc/check_env.py" "${check_args[@]}" --quiet 2>/dev/null; then
    say "environment complete, nothing to do"
    exit 0
fi

# 1. torch: keep an installed one (e.g. a CUDA build); otherwise the CPU build.
if pyok 'import torch'; then
    say "torch $("$PY" -c 'import torch; print(torch.__version__)') already installed, keeping it"
else
    say "installing torch==$TORCH_CPU_VERSION (CPU build)"
    pip_q "torch==$TORCH_CPU_VERSION"
fi

# 2. mmengine, and the setuptools it needs: mmengine 0.10 imports
#    pkg_resources (for configs that inherit mmrotate:: / mmdet:: files), which
#    setuptools dropped after 80.9, and torch 2.13 pulls the newest setuptools.
pyok 'import pkg_resources' || {
    say "installing setuptools <= 80.9 (pkg_resources, for mmengine's configs)"
    pip_q "setuptools>=77.0.3,<=80.9"; }  # >=: torch 2.13's own requirement
pyok 'import mmengine; assert mmengine.__version__.startswith("0.10.")' || {
    say "installing mmengine 0.10.x"; pip_q "mmengine>=0.10.4,<0.11"; }

# 3. mmcv: a compiled one already installed is kept; otherwise mmcv-lite, or
#    with --compiled-ops a build from source (from the wheel cache if there).
compiled_ok='import importlib.machinery as m, mmcv; assert mmcv.__version__ == "'$MMCV_VERSION'"; assert m.PathFinder.find_spec("mmcv._ext", mmcv.__path__)'
mmcv_ok='import mmcv; assert mmcv.__version__ == "'$MMCV_VERSION'"'
if pyok "$compiled_ok"; then
    say "mmcv $MMCV_VERSION with compiled ops already installed, keeping it"
elif [[ $COMPILED_OPS != 1 ]]; then
    pyok "$mmcv_ok" || {
        say "installing mmcv-lite $MMCV_VERSION (no compiling: sm3det_compat's PyTorch kernels serve mmcv.ops)"
        pip_q "mmcv-lite==$MMCV_VERSION"; }
else
    pyok 'import pkg_resources, wheel, ninja' || {
        say "installing build requirements (setuptools with pkg_resources, wheel, ninja)"
        pip_q -r "$ROOT/requirements/build.txt"; }
    # keyed by torch version, CUDA and Python (one rule, in the package)
    wheel_dir=$(cd "$ROOT" && "$PY" -c 'from sm3det_compat.compiled_mmcv import compiled_wheel_dir; print(compiled_wheel_dir())')
    key=$(basename "$wheel_dir")
    mkdir -p "$wheel_dir"
    if ! ls "$wheel_dir"/mmcv-$MMCV_VERSION-*.whl >/dev/null 2>&1; then
        command -v "${CXX:-g++}" >/dev/null || die "no C++ compiler (g++) found: mmcv $MMCV_VERSION must be compiled (apt-get install g++)"
        say "building mmcv $MMCV_VERSION with ops for $key (once; 10-26 min on 2 cores)"
        src=$(mktemp -d)
        log="$CACHE/mmcv-build-$key.log"
        "$PY" -m pip download -q --no-deps --no-binary :all: --no-build-isolation \
            "mmcv==$MMCV_VERSION" -d "$src" >/dev/null 2>&1 ||
            die "could not download the mmcv $MMCV_VERSION source from the package index"
        tar -xzf "$src/mmcv-$MMCV_VERSION.tar.gz" -C "$src"
        # mmcv hard-codes -std=c++14; torch's headers state the standard they need.
        std=$("$PY" - <<'EOF'
import os, re, torch
hdr = os.path.join(os.path.dirname(torch.__file__), 'include', 'ATen', 'ATen.h')
m = re.search(r'C\+\+(\d+) or later compatible compiler', open(hdr).read())
print(m.group(1) if m else '17')
EOF
)
        sed -i "s/c++14/c++$std/g" "$src/mmcv-$MMCV_VERSION/setup.py"
        # The objects to compile: the sources of mmcv's setup.py for CPU
        # ops, plus its CUDA ones in a CUDA build.
        csrc="$src/mmcv-$MMCV_VERSION/mmcv/ops/csrc/pytorch"
        total=$(ls "$csrc"/*.cpp "$csrc"/cpu/*.cpp 2>/dev/null | wc -l)
        [[ $key == *-cu* ]] && total=$((total + $(ls "$csrc"/cuda/*.cu "$csrc"/cuda/*.cpp 2>/dev/null | wc -l)))
        say "compiling $total objects with -std=c++$std, log: $log"
        ( cd "$src/mmcv-$MMCV_VERSION" &&
          MMCV_WITH_OPS=1 MAX_JOBS=${MAX_JOBS:-$(nproc)} \
          "$PY" -m pip wheel -v --no-build-isolation --no-deps -w "$wheel_dir" . ) >"$log" 2>&1 &
        build=$!
        while kill -0 $build 2>/dev/null; do
            sleep 60
            # ninja prints "[done/total]" as each object finishes; pip -v
            # indents the build's output.
            n=$(grep -o '^ *\[[0-9]*/[0-9]*\]' "$log" | tail -n 1 | tr -d ' []' || true)
            [[ -n $n ]] && { done_=${n%/*}; total=${n#*/}; }
            if [[ -z $n ]]; then
                state="preparing (0 of $total objects compiled)"
            elif (( done_ < total )); then
                state="compiled $done_ of $total objects ($((100 * done_ / total))%)"
            else
                state="compiled all $total objects, linking"
            fi
            say "  ... mmcv: $state ($(date +%H:%M))"
        done
        if ! wait $build; then
            echo "----- last lines of $log -----" >&2; tail -n 25 "$log" >&2
            die "mmcv build failed; full log in $log"
        fi
        rm -rf "$src"
    else
        say "reusing cached mmcv wheel from $wheel_dir"
    fi
    # mmcv-lite and mmcv install the same files: one replaces the other.
    "$PY" -m pip uninstall -q -y mmcv-lite >/dev/null 2>&1 || true
    pip_q "$wheel_dir"/mmcv-$MMCV_VERSION-*.whl
    pyok "$compiled_ok" && pyok 'import mmcv._ext' ||
        die "mmcv installed but its compiled ops (mmcv._ext) do not import"
fi

# 4. mmdet, mmrotate and the rest of the runtime stack (mmcv is satisfied now).
pyok 'import mmdet, mmrotate, pycocotools, shapely, matplotlib, pytest, flake8, isort, yapf' || {
    say "installing mmdet, mmrotate, pycocotools and the test requirements"
    pip_q -r "$ROOT/requirements/runtime.txt" -r "$ROOT/requirements/tests.txt"; }

# 4b. ONNX export and runtime, at the pinned versions (requirements/deploy.txt).
pyok 'import onnx, onnxruntime
assert (onnx.__version__, onnxruntime.__version__) == ("1.23.2", "1.32.0")' || {
    say "installing onnx and onnxruntime (ONNX export and runtime)"
    pip_q -r "$ROOT/requirements/deploy.txt"; }

# 5. This package, editable, pointing at this checkout.
say "installing sm3det (editable) from $ROOT"
pip_q --no-deps --no-build-isolation -e "$ROOT"

"$PY" "$ROOT/tools/misc/check_env.py" "${check_args[@]}" || die "the environment check failed (see above)"
say "done"
