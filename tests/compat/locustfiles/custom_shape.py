"""A locustfile with its own LoadTestShape: 1 user, then 3, then the shape ends the test."""

from locust import HttpUser, LoadTestShape, constant, task


class Ramp(LoadTestShape):
    # (until run time, users, spawn rate)
    stages = [(1.5, 1, 10), (3.5, 3, 10)]

    def tick(self) -> tuple[int, float] | None:
        run_time = self.get_run_time()
        for until, users, rate in self.stages:
            if run_time < until:
                return users, rate
        return None  # the shape is over: Locust stops the test


class Reader(HttpUser):
    wait_time = constant(0.05)

    @task
    def read(self) -> None:
        self.client.get("/get")
