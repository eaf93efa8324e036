"""A MarkovTaskSet (Locust 2.37+): the next task is drawn from the current task's transitions."""

from locust import HttpUser, MarkovTaskSet, constant, transition, transitions


class Browsing(MarkovTaskSet):
    @transition("product")
    def home(self) -> None:
        self.client.get("/anything/home")

    @transitions({"product": 1, "cart": 2, "home": 1})
    def product(self) -> None:
        self.client.get("/anything/product")

    @transitions(["home", "product"])
    def cart(self) -> None:
        self.client.get("/anything/cart")


class Visitor(HttpUser):
    wait_time = constant(0.05)
    tasks = [Browsing]
