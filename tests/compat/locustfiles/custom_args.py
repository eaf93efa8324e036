"""A custom command-line argument (events.init_command_line_parser), read by the tasks."""

from typing import Any

from locust import HttpUser, constant, events, task


@events.init_command_line_parser.add_listener
def add_arguments(parser: Any) -> None:
    parser.add_argument("--product-id", type=int, default=1, help="which product the users read")


class ProductUser(HttpUser):
    wait_time = constant(0.05)

    @task
    def product(self) -> None:
        product_id = self.environment.parsed_options.product_id
        self.client.get(f"/anything/products/{product_id}")
