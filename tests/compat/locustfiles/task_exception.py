"""A task that raises an unhandled exception after its request (a parsing bug in the test code)."""

from locust import HttpUser, constant, task


class OrderUser(HttpUser):
    wait_time = constant(0.05)

    @task(3)
    def browse(self) -> None:
        self.client.get("/get")

    @task(1)
    def order_total(self) -> None:
        self.client.get("/anything/order")
        raise ValueError("order total is not a number")  # raises here
