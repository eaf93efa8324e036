"""@tag on tasks, selected at run time with Locust's --tags."""

from locust import HttpUser, constant, tag, task


class TaggedUser(HttpUser):
    wait_time = constant(0.05)

    @tag("checkout")
    @task
    def pay(self) -> None:
        self.client.post("/anything/pay", json={"amount": 10})

    @tag("checkout", "cart")
    @task
    def cart(self) -> None:
        self.client.get("/anything/cart")

    @task
    def browse(self) -> None:
        self.client.get("/anything/browse")

    @tag("admin")
    @task
    def admin(self) -> None:
        self.client.delete("/anything/admin")
