"""Realistic think time: each user waits 1–2 s between tasks, so a short run sends few requests."""

from locust import HttpUser, between, task


class Reader(HttpUser):
    wait_time = between(1, 2)

    @task
    def read(self) -> None:
        self.client.get("/get")
