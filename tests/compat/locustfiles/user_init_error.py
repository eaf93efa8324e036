"""A user class that needs a variable the CI job does not set: it raises in __init__."""

import os
from typing import Any

from locust import HttpUser, constant, task


class ApiUser(HttpUser):
    wait_time = constant(0.05)

    def __init__(self, environment: Any) -> None:
        super().__init__(environment)
        self.api_host = os.environ["COMPAT_API_HOST"]  # unset on purpose: KeyError

    @task
    def read(self) -> None:
        self.client.get("/get")
