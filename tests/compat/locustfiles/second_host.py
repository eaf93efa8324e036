"""Requests to a second host by absolute URL (a CDN, an auth server) next to the target's own."""

import os

from locust import HttpUser, constant, task

OTHER_HOST = os.environ.get("COMPAT_OTHER_HOST", "http://127.0.0.1:9")


class PageUser(HttpUser):
    wait_time = constant(0.05)

    @task(2)
    def page(self) -> None:
        self.client.get("/html")

    @task(1)
    def asset(self) -> None:
        self.client.get(f"{OTHER_HOST}/anything/asset.js")
