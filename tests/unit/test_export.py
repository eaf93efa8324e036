"""The run's RED metrics as OpenMetrics text (metrics.prom) and the Pushgateway's URL: issue 14, item 4."""

from __future__ import annotations

import base64
import os
import shutil
import subprocess
from pathlib import Path

import pytest
from prometheus_client.openmetrics.parser import text_string_to_metric_families as parse_openmetrics
from prometheus_client.parser import text_string_to_metric_families as parse_classic

from ci_perf.analysis.summarize import summarize_run
from ci_perf.export import GROUPING, METRICS_FILE, group_url, render_metrics, run_labels, shown_url, write_metrics
from ci_perf.results import RunResult
from tests.conftest import collected_run
from tests.support.runs import JUDGED_LOAD

HOSTILE = (
    'GET /a"b',
    "GET /back\\slash\\n",
    "GET /new\nline",
    'GET /x"} 1\n# EOF\nci_perf_requests_total{endpoint="forged"} 9',
    "GET /cr\rreturn",
    "GET /ünïcødé 🚀\u2028sep",
)
AS_READ = sorted(name.replace("\r", "\n") for name in HOSTILE)  # a CR is written as a newline
LABELS = {"repository": "acme/shop", "branch": "feature/a\\b", "commit": "c" * 40, "scenario": "abc123"}


def _run(
    names: tuple[str, ...] = ("GET /api/products", "POST /api/orders"), *, sha: str | None = "c" * 40
) -> RunResult:
    collected = collected_run(
        endpoints={name: [10.0 + i, 20.0 + i, 30.0 + i, 40.0 + i] for i, name in enumerate(names)},
        failures={names[0]: 1},
    )
    return summarize_run(
        collected, load=JUDGED_LOAD, target="http://x", tool_version="t", git_sha=sha, git_branch="feature/a\\b"
    )


def _samples(text: str, *, openmetrics: bool = True) -> dict[str, list[tuple[dict[str, str], float]]]:
    parse = parse_openmetrics if openmetrics else parse_classic
    found: dict[str, list[tuple[dict[str, str], float]]] = {}
    for family in parse(text):
        for sample in family.samples:
            found.setdefault(sample.name, []).append((sample.labels, sample.value))
    return found


def test_every_endpoint_has_its_red_metrics_with_the_run_labels() -> None:
    result = _run()
    samples = _samples(render_metrics(result, LABELS))
    for endpoint in result.endpoints:
        labels = {"endpoint": endpoint.name, **LABELS}
        stats = endpoint.stats
        assert (labels, stats.requests) in samples["ci_perf_requests_total"]
        assert (labels, stats.failures) in samples["ci_perf_failures_total"]
        assert (labels, pytest.approx(stats.rps)) in samples["ci_perf_throughput_requests_per_second"]
        assert (labels, pytest.approx(stats.failures / stats.requests)) in samples["ci_perf_error_ratio"]
        assert (labels, stats.requests) in samples["ci_perf_request_duration_seconds_count"]
        assert (labels, pytest.approx(stats.mean_ms * stats.requests / 1000)) in samples[  # type: ignore[operator]
            "ci_perf_request_duration_seconds_sum"
        ]
        quantiles = {
            s[0]["quantile"]: s[1]
            for s in samples["ci_perf_request_duration_seconds"]
            if s[0]["endpoint"] == endpoint.name
        }
        assert quantiles == {
            "0.5": pytest.approx(stats.p50_ms / 1000),  # type: ignore[operator]
            "0.9": pytest.approx(stats.p90_ms / 1000),  # type: ignore[operator]
            "0.95": pytest.approx(stats.p95_ms / 1000),  # type: ignore[operator]
            "0.99": pytest.approx(stats.p99_ms / 1000),  # type: ignore[operator]
            "0.999": pytest.approx(stats.p999_ms / 1000),  # type: ignore[operator]
        }
    assert samples["ci_perf_run_end_timestamp_seconds"] == [(LABELS, result.meta.ended_at)]


def test_the_file_declares_types_and_units_and_ends_with_eof() -> None:
    families = {f.name: f for f in parse_openmetrics(render_metrics(_run(), LABELS))}
    assert families["ci_perf_requests"].type == "counter"
    assert families["ci_perf_request_duration_seconds"].type == "summary"
    assert families["ci_perf_request_duration_seconds"].unit == "seconds"
    assert render_metrics(_run(), LABELS).endswith("# EOF\n")


@pytest.mark.parametrize("openmetrics", [pytest.param(True, id="openmetrics"), pytest.param(False, id="classic")])
def test_hostile_endpoint_names_stay_label_values(openmetrics: bool) -> None:
    text = render_metrics(_run(HOSTILE), LABELS, openmetrics=openmetrics)
    requests = _samples(text, openmetrics=openmetrics)["ci_perf_requests_total"]
    assert sorted(labels["endpoint"] for labels, _ in requests) == AS_READ
    assert all(labels["branch"] == "feature/a\\b" for labels, _ in requests)
    assert len(requests) == len(HOSTILE)  # no forged series


def test_an_unknown_value_leaves_its_label_out() -> None:
    result = _run(sha=None)
    labels = run_labels(result, repository=None)
    assert labels == {"repository": "", "branch": "feature/a\\b", "commit": "", "scenario": result.meta.scenario_key}
    (sample_labels, _), *_ = _samples(render_metrics(result, labels))["ci_perf_requests_total"]
    assert set(sample_labels) == {"endpoint", "branch", "scenario"}


def test_the_file_is_written_in_the_out_folder(tmp_path: Path) -> None:
    path = write_metrics(_run(HOSTILE), LABELS, tmp_path)
    assert path == tmp_path / METRICS_FILE
    endpoints = {labels["endpoint"] for labels, _ in _samples(path.read_text("utf-8"))["ci_perf_requests_total"]}
    assert sorted(endpoints) == AS_READ


def _promtool() -> str | None:
    found = shutil.which("promtool")
    if found is None and os.environ.get("CI_PERF_PROMETHEUS") == "required":
        pytest.fail("CI_PERF_PROMETHEUS=required: promtool (Debian's prometheus package) is missing")
    return found


def test_promtool_accepts_what_the_pushgateway_gets() -> None:
    promtool = _promtool()
    if promtool is None:
        pytest.skip("promtool not installed (apt-get install prometheus)")
    text = render_metrics(_run(HOSTILE), LABELS, openmetrics=False)
    done = subprocess.run([promtool, "check", "metrics"], input=text, capture_output=True, text=True, check=False)
    assert done.returncode == 0, done.stdout + done.stderr
    assert _samples(text, openmetrics=False)["ci_perf_requests_total"]


def test_the_pushgateway_group_is_base64_encoded_and_names_no_commit() -> None:
    url = group_url("http://pg:9091/prefix/", {**LABELS, "repository": ""})
    head, _, path = url.partition("/metrics/job/ci-perf/")
    assert head == "http://pg:9091/prefix"
    parts = path.split("/")
    names = [name.removesuffix("@base64") for name in parts[::2]]
    assert names == list(GROUPING)
    values = [base64.urlsafe_b64decode(value).decode() if value != "=" else "" for value in parts[1::2]]
    assert values == ["", "feature/a\\b", "abc123"]


def test_a_url_shown_in_the_log_has_no_credentials() -> None:
    assert shown_url("https://user:s3cret@pg.example:9091/x") == "https://pg.example:9091/x"
    assert shown_url("http://pg:9091") == "http://pg:9091"
