"""A broken service: every request fails with 500 except the health check."""

from locust import HttpUser, constant, task


class Client(HttpUser):
    wait_time = constant(0.05)

    @task(4)
    def orders(self) -> None:
        self.client.get("/status/500")

    @task(1)
    def health(self) -> None:
        self.client.get("/status/200")
