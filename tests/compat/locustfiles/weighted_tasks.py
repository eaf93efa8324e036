"""The most common style: an HttpUser with weighted @task methods and a constant think time."""

from locust import HttpUser, constant, task


class ApiUser(HttpUser):
    wait_time = constant(0.05)

    @task(3)
    def read(self) -> None:
        self.client.get("/get?page=1")

    @task(1)
    def write(self) -> None:
        self.client.post("/post", json={"item": 1, "quantity": 2})
