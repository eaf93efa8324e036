"""The compatibility cases: one locustfile style each (tests/compat/locustfiles/), run as a user would."""

from __future__ import annotations

import pytest

from tests.compat.runs import Case


def pending(item: int) -> pytest.MarkDecorator:
    """A test of issue 11's item ``item``, which has not landed yet: it must fail until it does."""
    return pytest.mark.xfail(strict=True, reason=f"issue 11 item {item}: pending")


WEIGHTED = Case("weighted_tasks")
WEIGHTED_PROCESSES = Case("weighted_tasks", load="processes: 2", users=4)
FAST_HTTP = Case("fast_http")
NESTED = Case("nested_taskset", duration="2s")  # long enough to visit every level
SEQUENTIAL = Case("sequential")
MARKOV = Case("markov")
REST = Case("rest_validation")
SOLD_OUT, IN_STOCK = "GET /base64/c29sZCBvdXQ=", "GET /base64/aW4gc3RvY2s="  # httpbin answers "sold out", "in stock"
CATCH_RESPONSE = Case(
    "catch_response", names=((SOLD_OUT, "GET /base64/[product]"), (IN_STOCK, "GET /base64/[product]"))
)
EVENT_HOOKS = Case("event_hooks")
# the shape ends at 3.5 s, well before the configured duration
SHAPE = Case("custom_shape", duration="8s")
SECOND_HOST = Case("second_host")
TAGS = Case("tags", locust_args=("--tags", "checkout"))
CUSTOM_ARGS = Case("custom_args", locust_args=("--product-id", "42"))
PYTEST_STYLE = Case("test_pytest_style")
# the user's own pytest settings beside the locustfile; plain `locust -f test_pytest_style.py` loads it all the same
PYTEST_SETTINGS = """\
[tool.pytest.ini_options]
python_files = ["check_*.py"]
addopts = "--strict-markers -p no:cacheprovider"
"""
PYTEST_STYLE_WITH_SETTINGS = Case("test_pytest_style", files=(("pyproject.toml", PYTEST_SETTINGS),))
THINK_TIME = Case("think_time", duration="3s")
TASK_EXCEPTION = Case("task_exception")
HUNG = Case("hung_endpoint", duration="3s", hangs=True)
ALWAYS_500 = Case("always_500")
LOGIN_COOKIE = Case("login_cookie")
# a user class that raises in __init__: ci-perf should say so at once, long before the 60 s (within 45 s: on
# a busy 2-core machine starting Python, Locust and the users took 12 s; a quiet one, 3.5 s)
USER_INIT_ERROR = Case("user_init_error", duration="60s", timeout_s=45)
# Locust's own config file in the working directory, asking for other users and duration than ci-perf.yml
LOCUST_CONF = Case("weighted_tasks", duration="3s", files=(("locust.conf", "users = 7\nrun-time = 1s\n"),))
COMPACT_USERS_FLAG = Case("weighted_tasks", locust_args=("-u10",))
# no budget, no baseline, and the default error limit turned off: nothing gates the run
UNGATED_500 = Case("always_500", config="performance_budget: {default_error_rate_percent: null}\n")

NAMES = {
    WEIGHTED: "weighted-tasks",
    WEIGHTED_PROCESSES: "weighted-tasks-2-processes",
    FAST_HTTP: "fast-http-user",
    NESTED: "nested-taskset",
    SEQUENTIAL: "sequential-taskset",
    MARKOV: "markov-taskset",
    REST: "rest-validation",
    CATCH_RESPONSE: "catch-response",
    EVENT_HOOKS: "event-hooks",
    SHAPE: "custom-shape",
    SECOND_HOST: "second-host",
    TAGS: "tags",
    CUSTOM_ARGS: "custom-arguments",
    PYTEST_STYLE: "pytest-style",
    PYTEST_STYLE_WITH_SETTINGS: "pytest-style-with-settings",
    THINK_TIME: "think-time",
    TASK_EXCEPTION: "task-exception",
    HUNG: "hung-endpoint",
    ALWAYS_500: "always-500",
    LOGIN_COOKIE: "login-cookie",
    USER_INIT_ERROR: "user-init-error",
    LOCUST_CONF: "locust-conf",
    COMPACT_USERS_FLAG: "compact-users-flag",
    UNGATED_500: "always-500-ungated",
}
# every style that sends load: each is run once alone and once in duet mode (the rest are refused before load)
LOAD_STYLES = [case for case in NAMES if case not in {USER_INIT_ERROR, LOCUST_CONF, COMPACT_USERS_FLAG, UNGATED_500}]
# styles with nothing to fail: no failure of any kind is expected
CLEAN = [WEIGHTED, WEIGHTED_PROCESSES, FAST_HTTP, NESTED, SEQUENTIAL, MARKOV, EVENT_HOOKS, TAGS, CUSTOM_ARGS]
CLEAN += [LOGIN_COOKIE, THINK_TIME]


def params(cases: list[Case], *, pending_on: dict[Case, int] | None = None) -> list[object]:
    """``cases`` as pytest parameters named after the case; those in ``pending_on`` wait for that item."""
    waiting = pending_on or {}
    return [
        pytest.param(case, id=NAMES[case], marks=[pending(waiting[case])] if case in waiting else []) for case in cases
    ]
