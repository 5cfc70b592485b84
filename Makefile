# The two commands (see README): `make demo` runs the main job, `make test` the suite.
.PHONY: setup demo test lint unit bench screenshots record-events record-kubernetes-events

# The Python scripts (no .py suffix) that lint checks like the package.
SCRIPTS = scripts/record-engine-events scripts/record-kubernetes-events scripts/kube-cluster

setup:
	scripts/setup

demo:
	scripts/demo

lint: setup
	.venv/bin/ruff check daemon tests $(SCRIPTS) bench stacks
	.venv/bin/ruff format --check daemon tests $(SCRIPTS) bench stacks
	.venv/bin/mypy
	.venv/bin/mypy tests bench
	cd daemon && ../.venv/bin/lint-imports --no-cache ../pyproject.toml
	@# Only store/ appends to the audit chain (SPEC.md); the rest call its record_* functions.
	@! grep -rn --include='*.py' 'audit\.append(' daemon/driftwarden | grep -v '^daemon/driftwarden/store/' \
		|| { echo "lint: audit events are appended only in store/"; exit 1; }

test: lint
	scripts/run-tests

# The benchmarks at their full size, each printing its figures, ratios and goal (slow).
bench: setup
	.venv/bin/python bench/fleet.py --stacks 6 --parallel 2
	.venv/bin/python bench/fleet.py --stacks 24 --parallel 2
	.venv/bin/python bench/scan_vs_refresh.py
	.venv/bin/python bench/cli_start.py
	.venv/bin/python bench/idle_daemon.py --stacks 10 --seconds 90
	.venv/bin/python bench/store_bench.py
	.venv/bin/python bench/web_pages.py --stacks 500
	.venv/bin/python bench/audit_latency.py --samples 10 --events 100000
	.venv/bin/python bench/audit_trust.py

# The README's dashboard screenshots, taken by the browser tests (tests/web) on real scans.
screenshots: setup
	DRIFTWARDEN_SCREENSHOTS=docs/screenshots .venv/bin/python -m pytest tests/web/test_pages.py -q

unit: setup
	.venv/bin/python -m pytest tests/unit -q

record-events: setup
	.venv/bin/python scripts/record-engine-events

record-kubernetes-events: setup
	.venv/bin/python scripts/record-kubernetes-events
