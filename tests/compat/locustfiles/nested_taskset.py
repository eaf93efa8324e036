"""TaskSets nested two deep, leaving with interrupt(), as in Locust's own documentation."""

from locust import HttpUser, TaskSet, constant, task


class Reviews(TaskSet):
    @task(3)
    def read_review(self) -> None:
        self.client.get("/html")

    @task(1)
    def done(self) -> None:
        self.interrupt()


class Catalogue(TaskSet):
    tasks = {Reviews: 2}

    @task(2)
    def browse(self) -> None:
        self.client.get("/xml")

    @task(2)
    def leave(self) -> None:
        self.interrupt()


class Shopper(HttpUser):
    wait_time = constant(0.05)
    tasks = {Catalogue: 1}

    @task(1)
    def home(self) -> None:
        self.client.get("/uuid")
