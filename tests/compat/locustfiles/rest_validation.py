"""FastHttpUser.rest(): JSON in, JSON out, checks written as asserts inside the with-block."""

from locust import FastHttpUser, constant, task


class RestClient(FastHttpUser):
    wait_time = constant(0.05)

    @task(2)
    def create_order(self) -> None:
        with self.rest("POST", "/post", json={"sku": "A-1", "quantity": 2}) as response:
            assert response.js["json"]["quantity"] == 2, "the order was not echoed"

    @task(2)
    def slideshow(self) -> None:
        with self.rest("GET", "/json") as response:
            assert response.js["slideshow"]["title"] == "Sample Slide Show"

    @task(1)
    def stock(self) -> None:
        with self.rest("GET", "/get?sku=A-1") as response:
            # the service echoes the query, so this check fails every time: failures by content, status 200
            assert response.js["args"].get("in_stock") == "yes", "out of stock"
