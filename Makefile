# Everything runs from the project's own .venv (Python 3.12), created on first use.
PY := .venv/bin/python

.PHONY: venv demo check-server test package bench clean

venv:
	@bash scripts/bootstrap.sh

# Generate an image through the plugin process (python -m main over stdio), as Dify runs it.
# Without SD_WEBUI_URL it starts the bundled stand-in WebUI and says so.
demo: venv
	$(PY) scripts/generate_image.py --out out

# What works on your WebUI: SD_WEBUI_URL=http://host:7860 [SD_WEBUI_USER=.. SD_WEBUI_PASSWORD=..] make check-server
# Runs the plugin as Dify does through a fixed list of cases and prints a table; exit 1 only when a case FAILS.
check-server: venv
	$(PY) scripts/check_server.py $(CHECK_ARGS)

# The scale-out test runs a real nginx (Debian package); ensure_nginx.sh installs it when missing.
test: venv
	@bash scripts/ensure_nginx.sh
	$(PY) -m pytest

package: venv
	$(PY) scripts/package.py

bench: venv
	$(PY) scripts/benchmark.py

clean:
	rm -rf out *.difypkg .pytest_cache
