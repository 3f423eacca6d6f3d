# Sourced by main.sh and test.sh: a virtual environment in .venv with jaxaware installed.
# torch is installed first and pinned: an unpinned torch pulls a multi-GB CUDA build.
set -euo pipefail
PYTHON=${PYTHON:-python3}
if [ ! -x .venv/bin/python ]; then
  echo "setting up .venv ..."
  "$PYTHON" -m venv .venv
fi
# shellcheck disable=SC1091
source .venv/bin/activate
if ! python -c "import jaxaware, torch, pytorch_pretrained_biggan, pytest, xdist, prdc, pytorch_msssim, sklearn, scipy" 2>/dev/null; then
  python -m pip install -q --upgrade pip
  python -m pip install -q "torch==2.13.0"
  python -m pip install -q -e ".[torch,test]"
fi
