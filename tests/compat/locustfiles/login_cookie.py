"""on_start logs in once per user; the session cookie it sets is checked on every task."""

from locust import HttpUser, constant, task


class Member(HttpUser):
    wait_time = constant(0.05)

    def on_start(self) -> None:
        # httpbin sets the cookie and redirects to /cookies; a login form's redirect is not followed here
        self.client.get("/cookies/set?session=s3cret", allow_redirects=False)

    @task
    def profile(self) -> None:
        with self.client.get("/cookies", catch_response=True) as response:
            if response.json()["cookies"].get("session") != "s3cret":
                response.failure("not logged in")
