"""Event hooks: init, test_start (issues a token the tasks send), request and test_stop listeners."""

from collections import Counter
from typing import Any

from locust import HttpUser, constant, events, task

TOKEN: dict[str, str] = {}
SEEN: Counter[str] = Counter()


@events.init.add_listener
def on_init(environment: Any, **_: Any) -> None:
    TOKEN["issuer"] = "init"


@events.test_start.add_listener
def on_test_start(environment: Any, **_: Any) -> None:
    TOKEN["value"] = "issued-at-test-start"


@events.request.add_listener
def on_request(request_type: str, name: str, exception: Exception | None, **_: Any) -> None:
    SEEN[f"{request_type} {name} {'failed' if exception else 'ok'}"] += 1


@events.test_stop.add_listener
def on_test_stop(environment: Any, **_: Any) -> None:
    print(f"event hooks saw {sum(SEEN.values())} requests")


class TokenUser(HttpUser):
    wait_time = constant(0.05)

    @task
    def who_am_i(self) -> None:
        token = TOKEN.get("value", "missing")
        with self.client.get("/headers", headers={"X-Token": token}, catch_response=True) as response:
            if response.json()["headers"].get("X-Token") != "issued-at-test-start":
                response.failure("the test_start hook did not run before the tasks")
