#!/usr/bin/env bash
# One-command environment setup for dspf-parser. Idempotent: a second run only checks.
#
#   bash tools/setup_env.sh            # creates ./.venv and installs everything into it
#   bash tools/setup_env.sh --no-venv  # installs into the current Python environment
#                                      # (use this with your own source build of detectron2)
#
# What it installs: torch==2.14.1 torchvision==0.29.1, detectron2, fvcore, pycocotools,
# opencv-python-headless, numpy, scipy, the test tools, and this project (`pip install -e .`).
#
# detectron2: an importable detectron2 (for example a real source build with its native
# extension) is used as it is. Otherwise the upstream 0.6 Python sources are taken from the
# registry's `pb1-detectron2==0.6` source distribution and installed WITHOUT the native
# extension; a placeholder `detectron2/_C.py` (tools/detectron2_c_placeholder.py) is installed
# inside that copy only. See README, "detectron2 without its native extension".
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$here"

use_venv=1
venv="${DSPF_VENV:-$here/.venv}"
for arg in "$@"; do
  case "$arg" in
    --no-venv) use_venv=0 ;;
    --venv=*) venv="${arg#--venv=}" ;;
    -h|--help) sed -n 2,17p "$0"; exit 0 ;;
    *) echo "setup_env.sh: unknown argument '$arg' (see --help)" >&2; exit 2 ;;
  esac
done

if [ "$use_venv" = 1 ]; then
  if [ ! -x "$venv/bin/python" ]; then
    echo "[setup] creating virtual environment $venv"
    python3 -m venv "$venv"
  fi
  py="$venv/bin/python"
else
  py="$(command -v python3)"
fi
pip=("$py" -m pip --disable-pip-version-check)
export PIP_PROGRESS_BAR=off

# pip 26 refuses to download pb1-detectron2 (direct-URL extra in its metadata); 24/25 accept it.
if ! "$py" -c 'import pip,sys; v=tuple(int(x) for x in pip.__version__.split(".")[:2]); sys.exit(0 if (24,0)<=v<(26,0) else 1)'; then
  echo "[setup] installing pip>=24,<26"
  "${pip[@]}" install -q "pip>=24,<26"
fi

echo "[setup] installing torch, torchvision and the project's requirements"
"${pip[@]}" install -q -r "$here/requirements.txt"

if "$py" -c 'import detectron2' 2>/dev/null; then
  echo "[setup] using the installed detectron2: $("$py" -c 'import detectron2,os; print(detectron2.__version__, os.path.dirname(detectron2.__file__))')"
else
  echo "[setup] installing detectron2 0.6 (Python sources, no native extension) from pb1-detectron2==0.6"
  work="$(mktemp -d)"
  trap 'rm -rf "$work"' EXIT
  # --no-build-isolation: its setup.py imports torch just to compute metadata.
  "${pip[@]}" download -q --no-deps --no-build-isolation -d "$work" "pb1-detectron2==0.6"
  "$py" "$here/tools/install_detectron2_sources.py" "$work"/pb1-detectron2-0.6.tar.gz
fi

echo "[setup] installing dspf_parser (editable)"
"${pip[@]}" install -q --no-deps --no-build-isolation -e "$here"

"$py" - <<'EOF'
import detectron2, torch, dspf_parser
from dspf_parser.utils.env import detectron2_native_extension_available
native = "with" if detectron2_native_extension_available() else "WITHOUT"
print(f"[setup] ok: torch {torch.__version__}, detectron2 {detectron2.__version__} ({native} native extension), dspf_parser {dspf_parser.__version__}")
EOF
