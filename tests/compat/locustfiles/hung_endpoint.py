"""An endpoint that hangs far longer than the run (httpbin's /delay/10) next to a fast one."""

from locust import HttpUser, constant, task


class Caller(HttpUser):
    wait_time = constant(0.05)

    @task(3)
    def fast(self) -> None:
        self.client.get("/get")

    @task(1)
    def stalled(self) -> None:
        self.client.get("/delay/10")
