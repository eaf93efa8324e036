"""What ci-perf says about each style: failures, exceptions, unfinished requests and other hosts land
where issue 11 (items 1–9) puts them, and a clean locustfile passes.

Names in result.json: ``Stats.unfinished``, ``RunResult.exceptions`` (type, message, count, where),
``RunResult.other_hosts`` (endpoints with ``host``), ``RunMeta.peak_users``; budget checks from the
default error limit carry ``source: "default"``.
"""

from __future__ import annotations

from collections import Counter
from urllib.parse import urlsplit

import pytest

from tests.compat.cases import (
    ALWAYS_500,
    CATCH_RESPONSE,
    CLEAN,
    COMPACT_USERS_FLAG,
    CUSTOM_ARGS,
    HUNG,
    IN_STOCK,
    LOCUST_CONF,
    LOGIN_COOKIE,
    MARKOV,
    NESTED,
    PYTEST_STYLE,
    PYTEST_STYLE_WITH_SETTINGS,
    REST,
    SECOND_HOST,
    SEQUENTIAL,
    SHAPE,
    SOLD_OUT,
    TAGS,
    TASK_EXCEPTION,
    THINK_TIME,
    UNGATED_500,
    USER_INIT_ERROR,
    Case,
    params,
)
from tests.compat.conftest import RunOf
from tests.compat.runs import CaseRun, Servers

EXIT_PASS, EXIT_GATE_FAILED, EXIT_BAD_INPUT = 0, 1, 2


def failures(run: CaseRun) -> dict[str, int]:
    assert run.result is not None, run.stderr
    return {e["name"]: sum(w["failures"] for w in e["windows"]) for e in run.result["endpoints"]}


def cut_off_at_most(case: Case) -> int:
    """Requests the end of the run cut off young: counted as requests, neither failed nor passed (one per user)."""
    return case.users


def no_traceback(run: CaseRun) -> bool:
    return "Traceback" not in run.stderr and "Traceback" not in run.stdout


@pytest.mark.parametrize("case", params(CLEAN))
def test_a_locustfile_with_nothing_to_fail_passes_with_no_failure(case: Case, single_run: RunOf) -> None:
    run = single_run(case)
    assert run.returncode == EXIT_PASS, run.stderr
    assert set(failures(run).values()) == {0}
    assert run.report is not None
    assert run.report["status"] == "pass"
    assert no_traceback(run)


@pytest.mark.parametrize(
    ("case", "endpoints"),
    [
        pytest.param(NESTED, {"GET /uuid", "GET /xml", "GET /html"}, id="nested-taskset"),
        pytest.param(MARKOV, {"GET /anything/home", "GET /anything/product", "GET /anything/cart"}, id="markov"),
        pytest.param(TAGS, {"POST /anything/pay", "GET /anything/cart"}, id="tags-after-double-dash"),
        pytest.param(CUSTOM_ARGS, {"GET /anything/products/42"}, id="custom-argument-after-double-dash"),
        pytest.param(PYTEST_STYLE, {"GET /get", "GET /json", "GET /anything/search?q=shoes"}, id="pytest-style"),
        pytest.param(
            PYTEST_STYLE_WITH_SETTINGS,
            {"GET /get", "GET /json", "GET /anything/search?q=shoes"},
            id="pytest-style-with-the-users-pytest-settings",
        ),
    ],
)
def test_the_endpoints_are_those_the_style_selects(case: Case, endpoints: set[str], single_run: RunOf) -> None:
    run = single_run(case)
    assert run.returncode == EXIT_PASS, run.stderr
    assert set(run.counted) == endpoints


def test_a_sequential_taskset_runs_its_steps_in_order(single_run: RunOf) -> None:
    counted = single_run(SEQUENTIAL).counted
    cart, address, pay = counted["GET /anything/cart"], counted["POST /anything/address"], counted["POST /anything/pay"]
    assert cart >= address >= pay >= cart - SEQUENTIAL.users
    assert pay > 0


def test_on_start_logs_each_user_in_once(single_run: RunOf) -> None:
    run = single_run(LOGIN_COOKIE)
    assert run.served["GET /cookies/set?session=s3cret"] == LOGIN_COOKIE.users
    assert failures(run)["GET /cookies"] == 0


def test_rest_validation_failures_are_counted_on_their_endpoint_with_the_assertion_message(
    single_run: RunOf,
) -> None:
    run = single_run(REST)
    failed = failures(run)
    requested = run.counted["GET /get?sku=A-1"]
    assert requested - cut_off_at_most(REST) <= failed["GET /get?sku=A-1"] <= requested  # every answer fails
    assert failed["POST /post"] == failed["GET /json"] == 0
    messages = [e["message"] for e in run.endpoint("GET /get?sku=A-1")["errors"]]
    assert messages
    assert all("out of stock" in m for m in messages)


def test_catch_response_failures_are_exactly_the_responses_that_failed_validation(single_run: RunOf) -> None:
    run = single_run(CATCH_RESPONSE)
    sold_out, in_stock = run.served_requests[SOLD_OUT], run.served_requests[IN_STOCK]
    assert sold_out > 0
    assert in_stock > 0
    assert run.counted["GET /base64/[product]"] == sold_out + in_stock
    endpoint = run.endpoint("GET /base64/[product]")
    failed = failures(run)["GET /base64/[product]"]
    assert sold_out - cut_off_at_most(CATCH_RESPONSE) <= failed <= sold_out
    assert {e["message"]: e["count"] for e in endpoint["errors"]} == {"CatchResponseError: sold out": failed}
    assert endpoint["stats"]["unfinished"] == 0


@pytest.mark.parametrize("case", [pytest.param(REST, id="rest"), pytest.param(CATCH_RESPONSE, id="catch-response")])
def test_validation_failures_fail_the_run_by_the_default_error_limit(case: Case, single_run: RunOf) -> None:
    run = single_run(case)
    assert run.returncode == EXIT_GATE_FAILED, run.stdout
    assert run.report is not None
    assert run.report["status"] == "fail"
    failed = [c for c in run.report["budget"]["checks"] if c["status"] == "fail"]
    assert failed
    assert {c["source"] for c in failed} == {"default"}


def test_a_service_failing_everywhere_but_its_health_check_fails_the_run(single_run: RunOf) -> None:
    run = single_run(ALWAYS_500)
    assert run.returncode == EXIT_GATE_FAILED, run.stdout
    requested = run.counted["GET /status/500"]
    assert requested - cut_off_at_most(ALWAYS_500) <= failures(run)["GET /status/500"] <= requested
    assert failures(run)["GET /status/200"] == 0
    assert run.report is not None
    assert run.report["status"] == "fail"
    assert "passed" not in run.report["headline"]
    (check,) = [c for c in run.report["budget"]["checks"] if c["endpoint"] == "GET /status/500"]
    assert (check["status"], check["source"], check["rule"]) == ("fail", "default", "error_rate_percent")


def test_a_run_that_nothing_gates_says_so_instead_of_passing(single_run: RunOf) -> None:
    run = single_run(UNGATED_500)
    assert run.returncode == EXIT_PASS, run.stderr
    assert run.report is not None
    assert "nothing was gated" in run.report["headline"]
    assert "passed" not in run.report["headline"]
    assert run.report["budget"]["checks"] == []


def test_a_hung_endpoint_is_reported_with_its_unfinished_requests_as_failures(single_run: RunOf) -> None:
    run = single_run(HUNG)
    stats = run.endpoint("GET /delay/10")["stats"]
    # each user that drew it early hung there until the end (one that drew it in the last second was cut off)
    assert 1 <= stats["unfinished"] <= HUNG.users
    assert stats["failures"] == stats["unfinished"]
    assert stats["max_ms"] >= 1000  # the wait so far is a lower bound: a stall never looks fast
    assert run.endpoint("GET /get")["stats"]["unfinished"] == 0
    assert run.returncode == EXIT_GATE_FAILED, run.stdout
    assert run.report is not None
    assert "passed" not in run.report["headline"]
    assert "/delay/10" in run.markdown


def test_unhandled_task_exceptions_are_counted_with_type_message_and_locustfile_line(single_run: RunOf) -> None:
    run = single_run(TASK_EXCEPTION)
    assert run.returncode == EXIT_GATE_FAILED, run.stdout  # as plain Locust exits 1 (max_task_exceptions: 0)
    assert run.result is not None
    (exception,) = run.result["exceptions"]
    assert exception["type"] == "ValueError"
    assert exception["message"] == "order total is not a number"
    where = f"{TASK_EXCEPTION.path.name}:{TASK_EXCEPTION.line_of('# raises here')}"
    assert exception["where"] == where
    # the task raises right after its request; a user stopped between the two never raises
    requested = run.counted["GET /anything/order"]
    assert requested - TASK_EXCEPTION.users <= exception["count"] <= requested
    assert run.report is not None
    assert "exception" in run.report["headline"]
    assert "ValueError" in run.markdown
    assert "order total is not a number" in run.markdown


def test_requests_to_another_host_are_grouped_under_it_and_kept_out_of_the_target(
    single_run: RunOf, servers: Servers
) -> None:
    run = single_run(SECOND_HOST)
    assert run.result is not None
    assert all(e["name"].split(" ", 1)[1].startswith("/") for e in run.result["endpoints"])
    (other,) = run.result["other_hosts"]
    assert urlsplit(servers.other.url).netloc in other["host"]
    assert run.counted_other == run.served_other > Counter()
    assert run.result["aggregate"]["requests"] == sum(e["stats"]["requests"] for e in run.result["endpoints"])
    assert run.report is not None
    assert all("asset.js" not in c["endpoint"] for c in run.report["budget"]["checks"])


def test_throughput_with_think_time_is_requests_over_the_measured_window(single_run: RunOf) -> None:
    run = single_run(THINK_TIME)
    assert run.result is not None
    meta, aggregate = run.result["meta"], run.result["aggregate"]
    assert meta["measured_s"] >= 0.9 * 3  # the configured duration, not first request to last response
    assert aggregate["rps"] == pytest.approx(aggregate["requests"] / meta["measured_s"], rel=0.01)


def test_a_locustfiles_own_shape_is_honoured_whole_or_refused_with_the_equivalent_stages(single_run: RunOf) -> None:
    run = single_run(SHAPE)
    if run.returncode == EXIT_BAD_INPUT:
        assert "stages:" in run.stderr
        assert no_traceback(run)
        return
    assert run.returncode == EXIT_PASS, run.stderr
    assert run.result is not None
    assert run.result["meta"]["peak_users"] == 3  # the shape's users, not the config's 2
    assert run.result["meta"]["duration_s"] < 6  # the shape's end (3.5 s) ended the run, not the 8 s configured
    assert "3 users" in run.markdown


def test_a_user_class_raising_in_init_is_reported_at_once_with_its_exception(single_run: RunOf) -> None:
    run = single_run(USER_INIT_ERROR)
    assert run.returncode == EXIT_BAD_INPUT, run.stderr
    assert "KeyError" in run.stderr
    assert "COMPAT_API_HOST" in run.stderr
    assert "interrupted" not in run.stderr  # reported long before the 60 s run would have ended
    assert no_traceback(run)


def test_locusts_own_config_file_never_changes_a_run_silently(single_run: RunOf) -> None:
    run = single_run(LOCUST_CONF)
    if run.returncode == EXIT_BAD_INPUT:
        assert "locust.conf" in run.stderr
        return
    assert run.returncode == EXIT_PASS, run.stderr
    assert run.result is not None
    assert run.result["meta"]["peak_users"] == LOCUST_CONF.users  # not locust.conf's 7
    assert run.result["meta"]["measured_s"] >= 0.9 * 3  # not cut to locust.conf's 1 s


def test_an_owned_locust_flag_in_its_compact_spelling_is_refused(single_run: RunOf) -> None:
    run = single_run(COMPACT_USERS_FLAG)
    assert run.returncode == EXIT_BAD_INPUT, run.stderr
    assert "-u" in run.stderr
    assert "load.users" in run.stderr
    assert run.result is None
