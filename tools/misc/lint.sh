#!/usr/bin/env bash
# OpenMMLab-style lint with the settings of setup.cfg: flake8, isort (check
# only) and yapf (diff only); changes nothing and exits 1 on any finding.
#
#   bash tools/misc/lint.sh             # the whole tree
#   bash tools/misc/lint.sh PATH ...    # some files or folders
#
# Fix what it reports with `isort PATH` and `yapf -i PATH`; flake8's findings
# (long lines, unused names) are fixed by hand.
# Environment: PYTHON (default python3).
set -uo pipefail

PY=${PYTHON:-python3}
cd "$(dirname "${BASH_SOURCE[0]}")/../.."
if (($#)); then paths=("$@"); else
    paths=(sm3det sm3det_compat tools tests configs setup.py); fi

status=0
echo "[lint] flake8"
"$PY" -m flake8 "${paths[@]}" || status=1
echo "[lint] isort --check-only --diff"
"$PY" -m isort --check-only --diff "${paths[@]}" || status=1
echo "[lint] yapf --diff --recursive"
"$PY" -m yapf --diff --recursive "${paths[@]}" || status=1
if ((status)); then
    echo "[lint] FAILED (see above)" >&2
else
    echo "[lint] OK"
fi
exit $status
