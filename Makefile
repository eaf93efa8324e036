# One command each for the things people do. Every target bootstraps .venv from a
# fresh clone with only Python 3.11+ and make: uv is installed into .uv/ with pip,
# then `uv sync --frozen` installs the locked stack into .venv/ (about a second).
PYTHON ?= python3
UV_VERSION ?= 0.13.9
UV := .uv/bin/uv
VENV := .venv
BIN := $(VENV)/bin
export UV_PYTHON_DOWNLOADS := never
export UV_PROJECT_ENVIRONMENT := $(VENV)

.PHONY: demo test test-fast test-compat bench-compat lint container-test bench bench-sketch bench-pipeline bench-overhead bench-wall bench-listener bench-detect bench-detect-live bench-duet bench-scale bench-arrival bench-server clean

$(UV):
	$(PYTHON) -m venv .uv
	.uv/bin/pip install --quiet --disable-pip-version-check "uv==$(UV_VERSION)"

$(BIN)/ci-perf: $(UV) pyproject.toml uv.lock
	$(UV) sync --frozen --quiet --python $(PYTHON)
	@touch $@

demo: $(BIN)/ci-perf
	$(BIN)/ci-perf demo --out ci-perf-demo

test: lint
	$(BIN)/pytest -q

# The unit tests only (pure, in-process; under half a minute): the loop while editing. `make test` runs them all.
test-fast: $(BIN)/ci-perf
	$(BIN)/pytest -q -m unit

# The compatibility suite alone (tests/compat): a locustfile of each style through `ci-perf run` against
# httpbin under gunicorn, counts checked against httpbin's access log (about two minutes). `make test` runs it too.
test-compat: $(BIN)/ci-perf
	$(BIN)/pytest -q tests/compat

# Code, types, import layers, the Dockerfile; then every workflow in README.md and docs/*.md through
# actionlint and zizmor --offline (tests/support/readme_workflows.py)
lint: $(BIN)/ci-perf
	$(BIN)/ruff check ci_perf tests benchmarks docker
	$(BIN)/ruff format --check ci_perf tests benchmarks docker
	$(BIN)/mypy --strict ci_perf docker/slim.py tests/support/readme_workflows.py
	$(BIN)/lint-imports --no-cache
	$(BIN)/hadolint Dockerfile
	$(BIN)/python -m tests.support.readme_workflows

# The GitHub Action's image built from Dockerfile and run without a container runtime
# (docs/CONTAINER.md). `make test` runs it too where root, podman and mmdebstrap are at hand;
# this target fails instead of skipping without them.
container-test: $(BIN)/ci-perf
	CI_PERF_CONTAINER_TEST=required $(BIN)/pytest -q tests/container

bench: bench-sketch bench-listener bench-pipeline bench-overhead bench-wall

bench-sketch: $(BIN)/ci-perf
	$(BIN)/python benchmarks/bench_sketch.py

bench-pipeline: $(BIN)/ci-perf
	$(BIN)/python benchmarks/bench_pipeline.py

bench-overhead: $(BIN)/ci-perf
	cd benchmarks && ../$(BIN)/python bench_overhead.py

clean:
	rm -rf .uv $(VENV) ci-perf-demo ci-perf-out .pytest_cache .mypy_cache .ruff_cache

bench-wall: $(BIN)/ci-perf
	cd benchmarks && ../$(BIN)/python bench_wall.py

bench-detect: $(BIN)/ci-perf
	$(BIN)/python benchmarks/bench_detect.py

# The error-rate test on simulated bursty failures: A/A blocking, power, coverage (issue 13, item 4)
.PHONY: bench-rates
bench-rates: $(BIN)/ci-perf
	$(BIN)/python benchmarks/bench_rates.py

# Confirm before blocking, simulated: A/A gating, power at +10 %, load runs per pull request (issue 13, item 3)
.PHONY: bench-confirm
bench-confirm: $(BIN)/ci-perf
	$(BIN)/python benchmarks/bench_confirm.py

# Single and duet modes: one pivot, run noise learned from the store, simulated (issue 13, items 2 and 7)
.PHONY: bench-single
bench-single: $(BIN)/ci-perf
	$(BIN)/python benchmarks/bench_single.py

bench-detect-live: $(BIN)/ci-perf
	$(BIN)/python benchmarks/bench_detect_live.py

bench-listener: $(BIN)/ci-perf
	$(BIN)/python benchmarks/bench_listener.py

bench-duet: $(BIN)/ci-perf
	$(BIN)/python benchmarks/bench_duet.py

bench-scale: $(BIN)/ci-perf
	cd benchmarks && ../$(BIN)/python bench_scale.py

bench-arrival: $(BIN)/ci-perf
	cd benchmarks && ../$(BIN)/python bench_arrival.py

# What server_metrics (Prometheus) adds to a run's wall time: needs /usr/bin/prometheus (docs/benchmarks.md)
bench-server: $(BIN)/ci-perf
	$(BIN)/python benchmarks/bench_server_metrics.py

bench-compat: $(BIN)/ci-perf
	$(BIN)/python benchmarks/bench_compat.py

# The tests a busy machine could break (the open model and the other profiles, a Locust left behind, an
# interrupt's cleanup, one action story, a locustfile refused at once) beside one busy loop per core, as when
# another test run or a benchmark shares the machine (.ci/beside-hogs always stops them; HOGS=N for another
# count). .ci/run runs it after `make test` (docs/benchmarks.md, 'Tests beside a CPU hog').
.PHONY: test-busy
BUSY_TESTS ?= tests/live/test_profiles_live.py tests/live/test_leftovers_live.py \
	tests/live/test_run_live.py::test_an_interrupt_stops_locust_and_leaves_no_process_behind \
	tests/live/test_action.py::test_a_pull_request_is_compared_with_the_recorded_baseline_and_commented_once \
	tests/compat/test_outcomes.py::test_a_user_class_raising_in_init_is_reported_at_once_with_its_exception
test-busy: $(BIN)/ci-perf
	.ci/beside-hogs $(BIN)/pytest -q $(BUSY_TESTS)
