"""FastHttpUser (geventhttpclient) with plain requests of several methods."""

from locust import FastHttpUser, constant, task


class FastUser(FastHttpUser):
    wait_time = constant(0.05)

    @task(2)
    def listing(self) -> None:
        self.client.get("/json")

    @task(1)
    def update(self) -> None:
        self.client.put("/put", json={"name": "renamed"})

    @task(1)
    def remove(self) -> None:
        self.client.delete("/delete")
