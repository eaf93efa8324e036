"""A SequentialTaskSet: a checkout flow whose steps always run in order."""

from locust import HttpUser, SequentialTaskSet, constant, task


class Checkout(SequentialTaskSet):
    @task
    def view_cart(self) -> None:
        self.client.get("/anything/cart")

    @task
    def add_address(self) -> None:
        self.client.post("/anything/address", json={"city": "Lyon"})

    @task
    def pay(self) -> None:
        self.client.post("/anything/pay", data={"amount": "10"})


class Buyer(HttpUser):
    wait_time = constant(0.05)
    tasks = [Checkout]
