# Two commands on a fresh Debian machine (run as root: Asterisk runs in a chroot):
#   make demo   install everything, start the IVR stack, place a demo call, keep serving
#   make test   install everything, run the test suite
.PHONY: bootstrap demo up test test-fast lint bench

bootstrap:
	bash scripts/bootstrap.sh

demo: bootstrap
	.venv/bin/ivr up --demo

up: bootstrap
	.venv/bin/ivr up

test: bootstrap
	.venv/bin/pytest -q -ra

# the fast tier (pure Python, no services, no models): under a minute
test-fast:
	.venv/bin/pytest -q -ra tests/unit tests/security

lint:
	.venv/bin/ruff check . && .venv/bin/mypy ivr asr tts dialog handoff campaigns asterisk && .venv/bin/lint-imports
