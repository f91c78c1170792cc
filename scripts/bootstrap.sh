#!/usr/bin/env bash
# Create .venv with Python 3.12 (what Dify's daemon runs plugins on) and install
# the plugin's and the tests' requirements. Re-running is cheap: it reinstalls
# only when a requirements file changed.
set -euo pipefail
cd "$(dirname "$0")/.."

find_python312() {
  local candidate version
  for candidate in python3.12 "${HOME}/.pyenv/versions/"3.12*/bin/python3.12 /usr/local/bin/python3.12 /usr/bin/python3.12; do
    if command -v "$candidate" >/dev/null 2>&1 && "$candidate" -c 'import sys; assert sys.version_info[:2] == (3, 12)' 2>/dev/null; then
      echo "$candidate"; return 0
    fi
  done
  if command -v pyenv >/dev/null 2>&1; then
    version=$(pyenv versions --bare 2>/dev/null | grep -E '^3\.12(\.|$)' | tail -n 1 || true)
    if [ -n "$version" ] && PYENV_VERSION="$version" python3.12 -V >/dev/null 2>&1; then
      echo "env PYENV_VERSION=$version python3.12"; return 0
    fi
  fi
  return 1
}

if [ ! -x .venv/bin/python ] || ! .venv/bin/python -c 'import sys; assert sys.version_info[:2] == (3, 12)' 2>/dev/null; then
  python312=$(find_python312) || { echo "Python 3.12 is needed (dify_plugin 0.10 requires it): install it, e.g. 'pyenv install 3.12'." >&2; exit 1; }
  rm -rf .venv
  $python312 -m venv .venv
fi

stamp=.venv/.requirements.sha256
wanted=$(cat requirements.txt requirements-test.txt | sha256sum | cut -d' ' -f1)
if [ "$(cat "$stamp" 2>/dev/null)" != "$wanted" ]; then
  .venv/bin/python -m pip install --quiet --disable-pip-version-check -r requirements-test.txt
  echo "$wanted" > "$stamp"
fi
