"""A pytest-style locustfile (Locust 2.35+): each test function is a user, `session` its HTTP client."""

from locust.clients import HttpSession


def test_browse(session: HttpSession) -> None:
    session.get("/get")
    session.get("/json").raise_for_status()


def test_search(session: HttpSession) -> None:
    session.get("/anything/search?q=shoes")
