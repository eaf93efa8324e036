"""catch_response validation that fails some responses by their content, with name= grouping.

httpbin's /base64/<text> answers with <text> decoded: "in stock" or "sold out". Both are 200.
"""

import random

from locust import HttpUser, constant, task

IN_STOCK = "/base64/aW4gc3RvY2s="  # "in stock"
SOLD_OUT = "/base64/c29sZCBvdXQ="  # "sold out"


class Shopper(HttpUser):
    wait_time = constant(0.05)

    @task
    def product(self) -> None:
        path = random.choice([IN_STOCK, IN_STOCK, SOLD_OUT])
        with self.client.get(path, name="/base64/[product]", catch_response=True) as response:
            if response.text == "sold out":
                response.failure("sold out")
            else:
                response.success()
