"""A stateful fake of the GitHub REST API on loopback, for tests that drive real PyGithub.

It owns the in-memory state of a few repositories (git objects, refs, pull requests, issue comments,
check runs, commit statuses and tokens), a seeding API for tests, inspection helpers, and fault injection
(`fail_next`, `rate_limit_next`, `deny`, `protect_branch`). Only the standard library is used.

Usage::

    with FakeGitHub() as fake:
        fake.add_token("ghs_app", kind="app")
        fake.add_repo("octo/app")
        sha = fake.add_commit("octo/app", files={"README.md": "hi"}, branch="main")
        gh = Github(base_url=fake.url, auth=Auth.Token("ghs_app"),
                    seconds_between_requests=0, seconds_between_writes=0)

`fake.url` is the API root PyGithub wants as `base_url`: `http://127.0.0.1:PORT` (like api.github.com,
no path). Pass `api_prefix="/api/v3"` to serve under a GitHub Enterprise style prefix instead; the fake then
answers only below that prefix and every `url` it returns carries it, as PyGithub refuses to follow URLs
outside its base path.

Semantics follow github.com where tests can observe them:

- git objects get real git SHA-1s (commit dates come from a fake clock that starts at 2024-01-01 and
  advances one minute per commit, so the same seeding gives the same shas); all repositories share one object
  store, like a fork network, while refs are per repository;
- `PATCH git/refs/...` with `force: false` is an atomic compare-and-swap: 422 "Update is not a fast forward"
  unless the new commit descends from the current one;
- "app" tokens act like GITHUB_TOKEN (`GET /user` is 403, writes are authored by a Bot); "user" tokens act
  like personal access tokens and, as on github.com, may not create check runs (403);
- an invalid token is 401 "Bad credentials"; no token at all is anonymous: public reads work, writes are 401;
- list endpoints honour `per_page`/`page` and send a `Link` header with `next`/`last`/`first`/`prev`;
- a fault can strike before the request takes effect (nothing happened) or after it (`fail_next(..., after=True)`:
  the comment exists, the answer is a 502; `status=0` closes the connection without an answer), as a gateway
  timeout or a reset connection does on github.com;
- a protected branch (`protect_branch`) refuses ref updates with GitHub's 422 bodies: a ruleset's "Repository
  rule violations found" and "Reference update failed" on creation, classic protection's required status check.
"""

from __future__ import annotations

import base64
import contextlib
import hashlib
import json
import math
import re
import socket
import threading
import time
import urllib.parse
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import TracebackType
from typing import Any, Literal, Self

__all__ = ["FakeGitHub", "ProtectionKind", "TokenKind"]

TokenKind = Literal["app", "user"]
ProtectionKind = Literal["ruleset", "classic"]

COMMENT_BODY_LIMIT = 65_536
CHECK_RUN_TEXT_LIMIT = 65_535
STATUS_DESCRIPTION_LIMIT = 140
DOCS_URL = "https://docs.github.com/rest"
# github.com's answers to a ref update on a protected branch (REST "Update a reference" / "Create a reference")
RULESET_UPDATE_REFUSED = "Repository rule violations found\n\nChanges must be made through a pull request.\n\n"
RULESET_CREATE_REFUSED = "Reference update failed"
CLASSIC_UPDATE_REFUSED = 'Required status check "build" is expected.'
UPDATE_REF_DOCS = "https://docs.github.com/rest/git/refs#update-a-reference"
CREATE_REF_DOCS = "https://docs.github.com/rest/git/refs#create-a-reference"
PROTECTED_BRANCH_DOCS = "https://docs.github.com/articles/about-protected-branches"
_BOT_IDS = {"github-actions[bot]": 41_898_282}
_GITHUB_ACTIONS_APP = {"id": 15_368, "slug": "github-actions", "node_id": "MDM6QXBwMTUzNjg=", "name": "GitHub Actions"}
_TREE_MODES = {"100644": "blob", "100755": "blob", "120000": "blob", "040000": "tree", "160000": "commit"}
_CHECK_STATUSES = {"queued", "in_progress", "completed", "waiting", "requested", "pending"}
_CHECK_CONCLUSIONS = {"action_required", "cancelled", "failure", "neutral", "success", "skipped", "stale", "timed_out"}
_STATUS_STATES = {"error", "failure", "pending", "success"}


# ---------------------------------------------------------------------------------------------------- git objects


@dataclass(frozen=True)
class _Person:
    name: str
    email: str
    date: datetime


@dataclass(frozen=True)
class _Entry:
    mode: str
    type: str
    sha: str


@dataclass(frozen=True)
class _Blob:
    data: bytes


@dataclass(frozen=True)
class _Tree:
    entries: tuple[tuple[str, _Entry], ...]  # in git order


@dataclass(frozen=True)
class _Commit:
    tree: str
    parents: tuple[str, ...]
    message: str
    author: _Person
    committer: _Person


_Object = _Blob | _Tree | _Commit


def _raw_sha(sha: str) -> bytes:
    try:
        raw = bytes.fromhex(sha)
    except ValueError:
        raw = b""
    return raw if len(raw) == 20 else hashlib.sha1(sha.encode(), usedforsecurity=False).digest()


def _person_line(person: _Person) -> str:
    return f"{person.name} <{person.email}> {int(person.date.timestamp())} +0000"


def _git_sha(obj: _Object) -> str:
    if isinstance(obj, _Blob):
        kind, payload = "blob", obj.data
    elif isinstance(obj, _Tree):
        kind = "tree"
        payload = b"".join(
            f"{entry.mode.lstrip('0')} {name}".encode() + b"\0" + _raw_sha(entry.sha) for name, entry in obj.entries
        )
    else:
        lines = [f"tree {obj.tree}", *(f"parent {p}" for p in obj.parents)]
        lines += [f"author {_person_line(obj.author)}", f"committer {_person_line(obj.committer)}", "", obj.message]
        kind, payload = "commit", "\n".join(lines).encode()
    header = f"{kind} {len(payload)}".encode() + b"\0"
    return hashlib.sha1(header + payload, usedforsecurity=False).hexdigest()


def _tree_order(item: tuple[str, _Entry]) -> str:
    name, entry = item
    return f"{name}/" if entry.type == "tree" else name


# ---------------------------------------------------------------------------------------------------- state records


@dataclass(frozen=True)
class _Actor:
    login: str
    kind: TokenKind

    @property
    def user_type(self) -> str:
        return "Bot" if self.kind == "app" else "User"


@dataclass
class _Repo:
    id: int
    full_name: str
    default_branch: str
    private: bool
    fork: bool = False
    refs: dict[str, str] = field(default_factory=dict)  # "refs/heads/main" -> commit sha
    protected: dict[str, ProtectionKind] = field(default_factory=dict)  # "refs/heads/x" -> how


@dataclass
class _Pull:
    number: int
    id: int
    head_sha: str
    head_ref: str
    head_repo: str
    base_ref: str
    base_sha: str
    state: str
    title: str
    author: str


@dataclass
class _Comment:
    id: int
    repo: str
    number: int
    body: str
    login: str
    user_type: str
    created_at: str
    updated_at: str


@dataclass
class _CheckRun:
    id: int
    repo: str
    name: str
    head_sha: str
    status: str
    conclusion: str | None
    started_at: str
    completed_at: str | None
    output: dict[str, Any]
    details_url: str | None
    external_id: str | None
    app_login: str


@dataclass
class _Status:
    id: int
    sha: str
    state: str
    context: str
    description: str | None
    target_url: str | None
    login: str
    user_type: str
    created_at: str


@dataclass
class _Fault:
    method: str
    pattern: re.Pattern[str]
    status: int
    remaining: int
    body: Any
    headers: dict[str, str]
    reset_in: float | None = None  # rate-limit faults compute x-ratelimit-reset when they fire
    after: bool = False  # the request takes effect first; only its answer is lost


@dataclass(frozen=True)
class _Denial:
    method: str
    pattern: re.Pattern[str]
    status: int
    message: str
    token: str | None


@dataclass
class _Request:
    method: str
    path: str  # below the API prefix, still percent-encoded, no query
    query: dict[str, str]
    body: Any
    actor: _Actor | None


@dataclass
class _Response:
    status: int  # 0: no answer, the connection is closed
    body: Any = None
    headers: dict[str, str] = field(default_factory=dict)


class _ApiError(Exception):
    def __init__(self, status: int, message: str | None = None, **extra: Any) -> None:
        super().__init__(message)
        self.status = status
        self.body = {"message": message or "Not Found", "documentation_url": DOCS_URL, **extra, "status": str(status)}


def _not_found(message: str = "Not Found") -> _ApiError:
    return _ApiError(404, message)


def _invalid(message: str, **extra: Any) -> _ApiError:
    return _ApiError(422, message, **extra)


def _now() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _iso(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _parse_date(value: Any, default: datetime) -> datetime:
    if not isinstance(value, str):
        return default
    return datetime.fromisoformat(value)


def _encode_content(data: bytes) -> str:
    encoded = base64.b64encode(data).decode()
    return "".join(f"{encoded[i : i + 60]}\n" for i in range(0, len(encoded), 60))


def _method_matches(rule_method: str, method: str) -> bool:
    return rule_method in {"*", method}


# ---------------------------------------------------------------------------------------------------- HTTP plumbing


class _Server(ThreadingHTTPServer):
    daemon_threads = True  # a forgotten stop() must not hang interpreter exit; stop() still joins them
    block_on_close = True

    def __init__(self, fake: FakeGitHub) -> None:
        self.fake = fake
        self.open_connections: set[socket.socket] = set()
        self.connections_lock = threading.Lock()
        super().__init__(("127.0.0.1", 0), _Handler)

    def process_request(self, request: Any, client_address: Any) -> None:
        with self.connections_lock:
            self.open_connections.add(request)
        super().process_request(request, client_address)

    def shutdown_request(self, request: Any) -> None:
        with self.connections_lock:
            self.open_connections.discard(request)
        super().shutdown_request(request)

    def drop_idle_connections(self) -> None:
        """Unblock handler threads waiting on keep-alive connections so server_close() can join them."""
        with self.connections_lock:
            connections = list(self.open_connections)
        for connection in connections:
            with contextlib.suppress(OSError):  # the client already closed it
                connection.shutdown(socket.SHUT_RDWR)


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    timeout = 30
    disable_nagle_algorithm = True  # headers and body go out as two writes; Nagle would delay each answer 40 ms
    server: _Server

    def _serve(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        raw_body = self.rfile.read(length) if length else b""
        response = self.server.fake._handle(
            self.command, self.path, authorization=self.headers.get("Authorization"), raw_body=raw_body
        )
        if response.status == 0:  # a lost answer: the client reads end-of-stream where the status line should be
            self.close_connection = True
            return
        payload = b"" if response.body is None else json.dumps(response.body).encode()
        self.send_response(response.status)
        for name, value in response.headers.items():
            self.send_header(name, value)
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        self.wfile.write(payload)

    do_GET = do_POST = do_PATCH = do_PUT = do_DELETE = _serve  # noqa: N815 - http.server dispatches on these names

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - the base class names it so
        """Stay quiet; `FakeGitHub.requests_log` records what happened."""


_Route = tuple[str, re.Pattern[str], Callable[..., _Response]]
_REPO = r"/repos/(?P<owner>[^/]+)/(?P<name>[^/]+)"


# ---------------------------------------------------------------------------------------------------- the fake


class FakeGitHub:
    """A GitHub REST API in memory, served on 127.0.0.1 from a daemon thread; safe to call from any thread."""

    def __init__(self, *, api_prefix: str = "") -> None:
        self._prefix = api_prefix.rstrip("/")
        self._lock = threading.RLock()
        self._server: _Server | None = None
        self._thread: threading.Thread | None = None
        self._repos: dict[str, _Repo] = {}
        self._objects: dict[str, _Object] = {}
        self._pulls: dict[tuple[str, int], _Pull] = {}
        self._comments: dict[int, _Comment] = {}
        self._check_runs: dict[int, _CheckRun] = {}
        self._statuses: dict[tuple[str, str], list[_Status]] = {}
        self._tokens: dict[str, _Actor] = {}
        self._faults: list[_Fault] = []
        self._denials: list[_Denial] = []
        self._log: list[tuple[str, str, int]] = []
        self._user_ids: dict[str, int] = dict(_BOT_IDS)
        self._next_id = 1_000_000
        self._clock = datetime(2024, 1, 1, tzinfo=UTC)
        self._routes = self._build_routes()

    # ------------------------------------------------------------------ lifecycle

    def start(self) -> Self:
        if self._server is None:
            self._server = _Server(self)
            self._thread = threading.Thread(
                target=self._server.serve_forever, args=(0.05,), name="fake-github", daemon=True
            )
            self._thread.start()
        return self

    def stop(self) -> None:
        server, thread = self._server, self._thread
        if server is None or thread is None:
            return
        server.shutdown()
        server.drop_idle_connections()
        server.server_close()  # joins the handler threads
        thread.join()
        self._server = self._thread = None

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, traceback: TracebackType | None
    ) -> None:
        self.stop()

    @property
    def url(self) -> str:
        """The `base_url` for PyGithub: `http://127.0.0.1:PORT` plus the API prefix, if any."""
        return f"{self.web_url}{self._prefix}"

    @property
    def web_url(self) -> str:
        """Where `html_url`s point (the "github.com" of this fake)."""
        if self._server is None:
            raise RuntimeError("FakeGitHub is not started")
        return f"http://127.0.0.1:{self._server.server_address[1]}"

    # ------------------------------------------------------------------ seeding

    def add_token(self, token: str, login: str = "github-actions[bot]", kind: TokenKind = "app") -> None:
        """Accept `token`; "app" acts like GITHUB_TOKEN (a Bot named `login`), "user" like a personal token."""
        with self._lock:
            self._tokens[token] = _Actor(login=login, kind=kind)

    def add_repo(self, full_name: str, default_branch: str = "main", private: bool = False) -> None:
        """Create an empty repository (its default branch appears with the first `set_branch`/`add_commit`)."""
        with self._lock:
            self._add_repo(full_name, default_branch=default_branch, private=private)

    def add_commit(
        self,
        repo: str,
        sha: str | None = None,
        parents: Sequence[str] = (),
        files: Mapping[str, str | bytes | None] | None = None,
        message: str = "commit",
        *,
        branch: str | None = None,
        author: str = "octocat",
    ) -> str:
        """Store a commit and return its sha.

        `files` are changes on top of the first parent's tree (None deletes a path), so a child commit only names
        what it changes. `sha` overrides the computed git sha (handy for readable test shas). `branch`, if given,
        is then pointed at the commit.
        """
        with self._lock:
            self._repo_record(repo)
            missing = [p for p in parents if not isinstance(self._objects.get(p), _Commit)]
            if missing:
                raise ValueError(f"unknown parent commits {missing}; add them first")
            flat = self._flatten(self._commit(parents[0]).tree) if parents else {}
            for path, text in (files or {}).items():
                clean = path.strip("/")
                self._remove_path(flat, clean)
                if text is not None:
                    data = text.encode() if isinstance(text, str) else text
                    self._drop_parent_files(flat, clean)
                    flat[clean] = _Entry("100644", "blob", self._store(_Blob(data)))
            person = _Person(author, f"{author}@users.noreply.github.com", self._tick())
            commit = _Commit(self._write_tree(flat), tuple(parents), message, person, person)
            commit_sha = self._store(commit, sha=sha)
            if branch is not None:
                self._repo_record(repo).refs[f"refs/heads/{branch}"] = commit_sha
            return commit_sha

    def set_branch(self, repo: str, branch: str, sha: str) -> None:
        with self._lock:
            self._repo_record(repo).refs[f"refs/heads/{branch}"] = sha

    def add_pull(
        self,
        repo: str,
        number: int,
        head_sha: str,
        head_ref: str,
        base_ref: str,
        base_sha: str | None = None,
        head_repo: str | None = None,
        state: str = "open",
        *,
        title: str = "A pull request",
        author: str = "octocat",
    ) -> None:
        """Create (or replace) pull request `number`; `head_repo` names a fork, created on first use.

        `base_sha` defaults to the current tip of `base_ref`.
        """
        with self._lock:
            record = self._repo_record(repo)
            if head_repo is not None and self._key(head_repo) not in self._repos:
                self._add_repo(head_repo, default_branch=record.default_branch, private=record.private, fork=True)
            resolved_base = base_sha or record.refs.get(f"refs/heads/{base_ref}")
            if resolved_base is None:
                raise ValueError(f"{repo} has no branch {base_ref!r}; pass base_sha")
            self._pulls[(self._key(repo), number)] = _Pull(
                number=number,
                id=self._new_id(),
                head_sha=head_sha,
                head_ref=head_ref,
                head_repo=head_repo or record.full_name,
                base_ref=base_ref,
                base_sha=resolved_base,
                state=state,
                title=title,
                author=author,
            )

    def add_comment(self, repo: str, number: int, body: str, *, login: str = "github-actions[bot]") -> int:
        """Seed an existing issue comment (a login ending in "[bot]" is a Bot); returns its id."""
        with self._lock:
            self._issue_pull(self._repo_record(repo), number)
            kind: TokenKind = "app" if login.endswith("[bot]") else "user"
            return self._create_comment(self._repo_record(repo), number, body, _Actor(login, kind)).id

    # ------------------------------------------------------------------ inspection

    def comments(self, repo: str, number: int) -> list[dict[str, Any]]:
        """Comments on issue/pull `number`, oldest first: id, body, user, user_type, created_at, updated_at."""
        with self._lock:
            key = self._key(repo)
            return [
                {
                    "id": c.id,
                    "body": c.body,
                    "user": c.login,
                    "user_type": c.user_type,
                    "created_at": c.created_at,
                    "updated_at": c.updated_at,
                }
                for c in self._comments.values()
                if c.repo == key and c.number == number
            ]

    def check_runs(self, repo: str) -> list[dict[str, Any]]:
        """All check runs of `repo`, oldest first."""
        with self._lock:
            key = self._key(repo)
            return [
                {
                    "id": run.id,
                    "name": run.name,
                    "head_sha": run.head_sha,
                    "status": run.status,
                    "conclusion": run.conclusion,
                    "output": dict(run.output),
                    "details_url": run.details_url,
                    "external_id": run.external_id,
                    "app": run.app_login,
                }
                for run in self._check_runs.values()
                if run.repo == key
            ]

    def statuses(self, repo: str, sha: str) -> list[dict[str, Any]]:
        """Commit statuses posted for `sha`, oldest first."""
        with self._lock:
            return [
                {
                    "id": s.id,
                    "state": s.state,
                    "context": s.context,
                    "description": s.description,
                    "target_url": s.target_url,
                    "creator": s.login,
                }
                for s in self._statuses.get((self._key(repo), sha), [])
            ]

    def branch_sha(self, repo: str, branch: str) -> str | None:
        with self._lock:
            return self._repo_record(repo).refs.get(f"refs/heads/{branch}")

    def read_file(self, repo: str, ref_or_sha: str, path: str) -> str | None:
        """The text of `path` at a branch, ref or commit sha; None when the ref or the file is missing."""
        with self._lock:
            commit = self._objects.get(self._resolve(self._repo_record(repo), ref_or_sha) or "")
            entry = self._lookup(commit.tree, path) if isinstance(commit, _Commit) else None
            if entry is None or entry.type != "blob":
                return None
            blob = self._objects[entry.sha]
            assert isinstance(blob, _Blob)
            return blob.data.decode()

    @property
    def requests_log(self) -> list[tuple[str, str, int]]:
        """(method, path below the API prefix without query, status) of every request, in arrival order."""
        with self._lock:
            return list(self._log)

    # ------------------------------------------------------------------ faults

    def fail_next(
        self,
        method: str,
        path_regex: str,
        status: int,
        count: int = 1,
        body: Any = None,
        headers: Mapping[str, str] | None = None,
        *,
        after: bool = False,
    ) -> None:
        """Answer the next `count` requests matching `method` ("*" for any) and `re.search(path_regex, path)`.

        With `after=True` each request is carried out first and only its answer is replaced: the lost-response case
        (a 502/504 from GitHub's front end, a reset connection) in which a comment or check run exists though the
        client saw an error. `status=0` sends no answer at all: the connection is closed.
        """
        default_body = {"message": HTTPStatus(status).phrase} if status else None
        with self._lock:
            self._faults.append(
                _Fault(
                    method=method.upper(),
                    pattern=re.compile(path_regex),
                    status=status,
                    remaining=count,
                    body=body if body is not None else default_body,
                    headers=dict(headers or {}),
                    after=after,
                )
            )

    def rate_limit_next(
        self,
        method: str,
        path_regex: str,
        *,
        status: int = 403,
        retry_after: int | None = 1,
        count: int = 1,
        secondary: bool = False,
    ) -> None:
        """Answer like an exhausted rate limit (403/429 with x-ratelimit-remaining: 0 and reset in a second)."""
        message = (
            "You have exceeded a secondary rate limit. Please wait a few minutes before you try again."
            if secondary
            else "API rate limit exceeded for installation ID 1."
        )
        headers = {"x-ratelimit-limit": "5000", "x-ratelimit-remaining": "0", "x-ratelimit-used": "5000"}
        if retry_after is not None:
            headers["retry-after"] = str(retry_after)
        with self._lock:
            self.fail_next(method, path_regex, status, count, {"message": message, "documentation_url": DOCS_URL})
            self._faults[-1].headers = headers
            self._faults[-1].reset_in = 1.0

    def deny(
        self,
        method: str,
        path_regex: str,
        status: int = 403,
        message: str = "Resource not accessible by integration",
        token: str | None = None,
    ) -> None:
        """Refuse matching requests (all tokens, or only `token`) until `allow_all()`."""
        with self._lock:
            self._denials.append(_Denial(method.upper(), re.compile(path_regex), status, message, token))

    def allow_all(self) -> None:
        """Drop every `deny` rule (pending `fail_next` faults stay)."""
        with self._lock:
            self._denials.clear()

    def protect_branch(self, repo: str, branch: str, kind: ProtectionKind = "ruleset") -> None:
        """Protect `branch` (existing or not): creating, moving or deleting it through the API is refused with 422.

        "ruleset" answers as a repository ruleset with "Require a pull request" does (the update is refused with
        "Repository rule violations found", the creation with "Reference update failed"); "classic" as a branch
        protection rule with a required status check that no commit of the branch has.
        """
        with self._lock:
            self._repo_record(repo).protected[f"refs/heads/{branch}"] = kind

    # ------------------------------------------------------------------ request handling

    def _handle(self, method: str, target: str, *, authorization: str | None, raw_body: bytes) -> _Response:
        """Answer one HTTP request; called by the server threads."""
        split = urllib.parse.urlsplit(target)
        query = {k: v[0] for k, v in urllib.parse.parse_qs(split.query).items()}
        in_prefix = split.path == self._prefix or split.path.startswith(f"{self._prefix}/")
        raw_path = split.path[len(self._prefix) :] or "/"
        path = urllib.parse.unquote(raw_path)
        with self._lock:
            try:
                response = (
                    self._dispatch(method, raw_path, path, query, authorization, raw_body)
                    if in_prefix
                    else _Response(404, _not_found().body)
                )
            except _ApiError as error:
                response = _Response(error.status, error.body)
            except Exception as exc:  # noqa: BLE001 - a bug in the fake must reach the test as a 500, not a hang
                response = _Response(500, {"message": f"fake GitHub crashed: {exc!r}"})
            self._log.append((method, path, response.status))
            served = len(self._log)
        overrides = {name.lower() for name in response.headers}
        standard = {k: v for k, v in self._standard_headers(served).items() if k.lower() not in overrides}
        response.headers = {**standard, **response.headers}
        return response

    def _dispatch(
        self, method: str, raw_path: str, path: str, query: dict[str, str], authorization: str | None, raw: bytes
    ) -> _Response:
        fault = next((f for f in self._faults if _method_matches(f.method, method) and f.pattern.search(path)), None)
        if fault is not None:
            fault.remaining -= 1
            if fault.remaining <= 0:
                self._faults.remove(fault)
            if fault.after:
                with contextlib.suppress(_ApiError):  # the request's own refusal is lost with its answer
                    self._serve_request(method, raw_path, path, query, authorization, raw)
            headers = dict(fault.headers)
            if fault.reset_in is not None:
                headers["x-ratelimit-reset"] = str(math.ceil(time.time() + fault.reset_in))
            return _Response(fault.status, fault.body, headers)
        return self._serve_request(method, raw_path, path, query, authorization, raw)

    def _serve_request(
        self, method: str, raw_path: str, path: str, query: dict[str, str], authorization: str | None, raw: bytes
    ) -> _Response:
        token, actor = self._authenticate(authorization)
        for denial in self._denials:
            if _method_matches(denial.method, method) and denial.pattern.search(path) and denial.token in {None, token}:
                raise _ApiError(denial.status, denial.message)
        try:
            body = json.loads(raw) if raw else {}
        except ValueError:
            raise _ApiError(400, "Problems parsing JSON") from None
        request = _Request(method, raw_path, query, body, actor)
        for route_method, pattern, handler in self._routes:
            match = pattern.fullmatch(raw_path)
            if match and route_method == method:
                groups = {k: urllib.parse.unquote(v) for k, v in match.groupdict().items()}
                return handler(request, **groups)
        raise _not_found()

    def _authenticate(self, authorization: str | None) -> tuple[str | None, _Actor | None]:
        if not authorization:
            return None, None
        scheme, _, token = authorization.partition(" ")
        actor = self._tokens.get(token.strip()) if scheme.lower() in {"token", "bearer"} else None
        if actor is None:
            raise _ApiError(401, "Bad credentials")
        return token.strip(), actor

    def _standard_headers(self, served: int) -> dict[str, str]:
        return {
            "Content-Type": "application/json; charset=utf-8",
            "X-GitHub-Media-Type": "github.v3; format=json",
            "X-GitHub-Request-Id": f"FAKE:{served}",
            "X-RateLimit-Limit": "5000",
            "X-RateLimit-Remaining": str(max(1, 5000 - served)),
            "X-RateLimit-Used": str(min(served, 4999)),
            "X-RateLimit-Reset": str(int(time.time()) + 3600),
            "X-RateLimit-Resource": "core",
        }

    def _build_routes(self) -> list[_Route]:
        table: list[tuple[str, str, Callable[..., _Response]]] = [
            ("GET", r"/user", self._get_user),
            ("GET", r"/users/(?P<login>[^/]+)", self._get_named_user),
            ("GET", r"/rate_limit", self._get_rate_limit),
            ("GET", _REPO, self._get_repo),
            ("GET", _REPO + r"/branches/(?P<branch>.+)", self._get_branch),
            ("GET", _REPO + r"/pulls", self._list_pulls),
            ("GET", _REPO + r"/pulls/(?P<number>\d+)", self._get_pull),
            ("GET", _REPO + r"/issues/(?P<number>\d+)", self._get_issue),
            ("GET", _REPO + r"/issues/(?P<number>\d+)/comments", self._list_comments),
            ("POST", _REPO + r"/issues/(?P<number>\d+)/comments", self._post_comment),
            ("GET", _REPO + r"/issues/comments/(?P<id>\d+)", self._get_comment),
            ("PATCH", _REPO + r"/issues/comments/(?P<id>\d+)", self._patch_comment),
            ("DELETE", _REPO + r"/issues/comments/(?P<id>\d+)", self._delete_comment),
            ("POST", _REPO + r"/check-runs", self._post_check_run),
            ("GET", _REPO + r"/check-runs/(?P<id>\d+)", self._get_check_run),
            ("PATCH", _REPO + r"/check-runs/(?P<id>\d+)", self._patch_check_run),
            ("GET", _REPO + r"/commits/(?P<ref>[^/]+)/check-runs", self._list_check_runs),
            ("GET", _REPO + r"/commits/(?P<ref>[^/]+)/statuses", self._list_statuses),
            ("GET", _REPO + r"/statuses/(?P<ref>[^/]+)", self._list_statuses),
            ("POST", _REPO + r"/statuses/(?P<sha>[^/]+)", self._post_status),
            ("GET", _REPO + r"/commits/(?P<ref>[^/]+)", self._get_commit),
            ("GET", _REPO + r"/compare/(?P<basehead>.+)", self._compare),
            ("POST", _REPO + r"/git/blobs", self._post_blob),
            ("GET", _REPO + r"/git/blobs/(?P<sha>[^/]+)", self._get_blob),
            ("POST", _REPO + r"/git/trees", self._post_tree),
            ("GET", _REPO + r"/git/trees/(?P<sha>.+)", self._get_tree),
            ("POST", _REPO + r"/git/commits", self._post_git_commit),
            ("GET", _REPO + r"/git/commits/(?P<sha>[^/]+)", self._get_git_commit),
            ("GET", _REPO + r"/git/ref/(?P<ref>.+)", self._get_ref),
            ("GET", _REPO + r"/git/refs", self._list_refs),
            ("GET", _REPO + r"/git/refs/(?P<ref>.+)", self._get_refs),
            ("GET", _REPO + r"/git/matching-refs/(?P<ref>.*)", self._matching_refs),
            ("POST", _REPO + r"/git/refs", self._post_ref),
            ("PATCH", _REPO + r"/git/refs/(?P<ref>.+)", self._patch_ref),
            ("DELETE", _REPO + r"/git/refs/(?P<ref>.+)", self._delete_ref),
            ("GET", _REPO + r"/contents/?(?P<path>.*)", self._get_contents),
        ]
        return [(method, re.compile(pattern), handler) for method, pattern, handler in table]

    # ------------------------------------------------------------------ endpoints: users and repositories

    def _get_user(self, req: _Request) -> _Response:
        if req.actor is None:
            raise _ApiError(401, "Requires authentication")
        if req.actor.kind == "app":
            raise _ApiError(403, "Resource not accessible by integration")
        return _Response(200, self._user_json(req.actor.login, req.actor.user_type))

    def _get_named_user(self, req: _Request, login: str) -> _Response:
        return _Response(200, self._user_json(login, "Bot" if login.endswith("[bot]") else "User"))

    def _get_rate_limit(self, req: _Request) -> _Response:
        rate = {"limit": 5000, "remaining": 4999, "reset": int(time.time()) + 3600, "used": 1}
        return _Response(200, {"resources": {"core": rate}, "rate": rate})

    def _get_repo(self, req: _Request, owner: str, name: str) -> _Response:
        return _Response(200, self._repo_json(self._visible_repo(req, owner, name)))

    def _get_branch(self, req: _Request, owner: str, name: str, branch: str) -> _Response:
        repo = self._visible_repo(req, owner, name)
        sha = repo.refs.get(f"refs/heads/{branch}")
        if sha is None:
            raise _not_found("Branch not found")
        url = f"{self._repo_url(repo)}/branches/{urllib.parse.quote(branch)}"
        protected = f"refs/heads/{branch}" in repo.protected
        body = {"name": branch, "commit": self._commit_json(repo, sha), "protected": protected, "url": url}
        return _Response(200, body)

    # ------------------------------------------------------------------ endpoints: pulls and issues

    def _list_pulls(self, req: _Request, owner: str, name: str) -> _Response:
        repo = self._visible_repo(req, owner, name)
        state = req.query.get("state", "open")
        pulls = sorted(
            (p for (key, _), p in self._pulls.items() if key == self._key(repo.full_name)),
            key=lambda p: -p.number,
        )
        pulls = [p for p in pulls if state in {"all", p.state}]
        if "base" in req.query:
            pulls = [p for p in pulls if p.base_ref == req.query["base"]]
        if "head" in req.query:
            pulls = [p for p in pulls if f"{p.head_repo.split('/')[0]}:{p.head_ref}" == req.query["head"]]
        return self._paged(req, [self._pull_json(repo, p) for p in pulls])

    def _get_pull(self, req: _Request, owner: str, name: str, number: str) -> _Response:
        repo = self._visible_repo(req, owner, name)
        pull = self._pulls.get((self._key(repo.full_name), int(number)))
        if pull is None:
            raise _not_found()
        return _Response(200, self._pull_json(repo, pull))

    def _get_issue(self, req: _Request, owner: str, name: str, number: str) -> _Response:
        repo = self._visible_repo(req, owner, name)
        return _Response(200, self._issue_json(repo, self._issue_pull(repo, int(number))))

    def _list_comments(self, req: _Request, owner: str, name: str, number: str) -> _Response:
        repo = self._visible_repo(req, owner, name)
        self._issue_pull(repo, int(number))
        key = self._key(repo.full_name)
        found = [c for c in self._comments.values() if c.repo == key and c.number == int(number)]
        return self._paged(req, [self._comment_json(repo, c) for c in found])

    def _post_comment(self, req: _Request, owner: str, name: str, number: str) -> _Response:
        repo = self._writable_repo(req, owner, name)
        self._issue_pull(repo, int(number))
        assert req.actor is not None
        comment = self._create_comment(repo, int(number), self._comment_body(req), req.actor)
        return _Response(201, self._comment_json(repo, comment))

    def _get_comment(self, req: _Request, owner: str, name: str, id: str) -> _Response:  # noqa: A002
        repo = self._visible_repo(req, owner, name)
        return _Response(200, self._comment_json(repo, self._comment_record(repo, int(id))))

    def _patch_comment(self, req: _Request, owner: str, name: str, id: str) -> _Response:  # noqa: A002
        repo = self._writable_repo(req, owner, name)
        comment = self._comment_record(repo, int(id))
        comment.body = self._comment_body(req)
        comment.updated_at = _now()
        return _Response(200, self._comment_json(repo, comment))

    def _delete_comment(self, req: _Request, owner: str, name: str, id: str) -> _Response:  # noqa: A002
        repo = self._writable_repo(req, owner, name)
        del self._comments[self._comment_record(repo, int(id)).id]
        return _Response(204)

    # ------------------------------------------------------------------ endpoints: checks and statuses

    def _post_check_run(self, req: _Request, owner: str, name: str) -> _Response:
        repo = self._writable_repo(req, owner, name)
        assert req.actor is not None
        if req.actor.kind != "app":
            raise _ApiError(403, "You must authenticate via a GitHub App.")
        body = req.body
        if not isinstance(body.get("name"), str) or not isinstance(body.get("head_sha"), str):
            raise _invalid('Invalid request.\n\n"name" and "head_sha" are required.')
        if self._resolve(repo, body["head_sha"]) is None:
            raise _invalid(f"No commit found for SHA: {body['head_sha']}")
        run = _CheckRun(
            id=self._new_id(),
            repo=self._key(repo.full_name),
            name=body["name"],
            head_sha=body["head_sha"],
            status="queued",
            conclusion=None,
            started_at=body.get("started_at") or _now(),
            completed_at=None,
            output={},
            details_url=None,
            external_id=None,
            app_login=req.actor.login,
        )
        self._apply_check_run(run, body)
        self._check_runs[run.id] = run
        return _Response(201, self._check_run_json(repo, run))

    def _get_check_run(self, req: _Request, owner: str, name: str, id: str) -> _Response:  # noqa: A002
        repo = self._visible_repo(req, owner, name)
        return _Response(200, self._check_run_json(repo, self._check_run_record(repo, int(id))))

    def _patch_check_run(self, req: _Request, owner: str, name: str, id: str) -> _Response:  # noqa: A002
        repo = self._writable_repo(req, owner, name)
        run = self._check_run_record(repo, int(id))
        self._apply_check_run(run, req.body)
        return _Response(200, self._check_run_json(repo, run))

    def _apply_check_run(self, run: _CheckRun, body: dict[str, Any]) -> None:
        """Validate first, then update: a 422 must leave the run as it was."""
        status = body.get("status", run.status)
        conclusion = body.get("conclusion", run.conclusion)
        if status not in _CHECK_STATUSES:
            raise _invalid(f"Invalid request.\n\n{status!r} is not a valid status.")
        if conclusion is not None:
            if conclusion not in _CHECK_CONCLUSIONS:
                raise _invalid(f"Invalid request.\n\n{conclusion!r} is not a valid conclusion.")
            status = "completed"
        elif status == "completed":
            raise _invalid('Invalid request.\n\nNo subschema in "anyOf" matched: conclusion is required.')
        output = body.get("output")
        if output is not None:
            if not isinstance(output, dict) or "title" not in output or "summary" not in output:
                raise _invalid('Invalid request.\n\n"title" and "summary" weren\'t supplied.')
            for key in ("summary", "text"):
                size = len(output.get(key) or "")
                if size > CHECK_RUN_TEXT_LIMIT:
                    raise _invalid(
                        f"Invalid request.\n\nOnly {CHECK_RUN_TEXT_LIMIT} characters are allowed; {size} were supplied."
                    )
            run.output = {k: output.get(k) for k in ("title", "summary", "text")}
        run.status, run.conclusion = status, conclusion
        if status == "completed" and run.completed_at is None:
            run.completed_at = body.get("completed_at") or _now()
        for key in ("name", "details_url", "external_id"):
            if key in body:
                setattr(run, key, body[key])

    def _list_check_runs(self, req: _Request, owner: str, name: str, ref: str) -> _Response:
        repo = self._visible_repo(req, owner, name)
        sha = self._resolve(repo, ref)
        if sha is None:
            raise _invalid(f"No commit found for SHA: {ref}")
        key = self._key(repo.full_name)
        runs = sorted(
            (r for r in self._check_runs.values() if r.repo == key and r.head_sha == sha), key=lambda r: -r.id
        )
        if req.query.get("filter", "latest") == "latest":
            newest: dict[str, _CheckRun] = {}
            for run in runs:
                newest.setdefault(run.name, run)
            runs = list(newest.values())
        if "check_name" in req.query:
            runs = [r for r in runs if r.name == req.query["check_name"]]
        if "status" in req.query:
            runs = [r for r in runs if r.status == req.query["status"]]
        page, headers = self._page(req, [self._check_run_json(repo, r) for r in runs])
        return _Response(200, {"total_count": len(runs), "check_runs": page}, headers)

    def _post_status(self, req: _Request, owner: str, name: str, sha: str) -> _Response:
        repo = self._writable_repo(req, owner, name)
        assert req.actor is not None
        body = req.body
        if body.get("state") not in _STATUS_STATES:
            raise _invalid("Validation Failed", errors=[{"resource": "Status", "code": "custom", "field": "state"}])
        description = body.get("description")
        if description is not None and len(description) > STATUS_DESCRIPTION_LIMIT:
            message = "description is too long (maximum is 140 characters)"
            error = {"resource": "Status", "code": "custom", "field": "description", "message": message}
            raise _invalid("Validation Failed", errors=[error])
        resolved = self._resolve(repo, sha)
        if resolved is None:
            raise _invalid(f"No commit found for SHA: {sha}")
        status = _Status(
            id=self._new_id(),
            sha=resolved,
            state=body["state"],
            context=body.get("context") or "default",
            description=description,
            target_url=body.get("target_url"),
            login=req.actor.login,
            user_type=req.actor.user_type,
            created_at=_now(),
        )
        self._statuses.setdefault((self._key(repo.full_name), resolved), []).append(status)
        return _Response(201, self._status_json(repo, status))

    def _list_statuses(self, req: _Request, owner: str, name: str, ref: str) -> _Response:
        repo = self._visible_repo(req, owner, name)
        sha = self._resolve(repo, ref)
        found = self._statuses.get((self._key(repo.full_name), sha or ""), [])
        return self._paged(req, [self._status_json(repo, s) for s in reversed(found)])

    # ------------------------------------------------------------------ endpoints: commits and compare

    def _get_commit(self, req: _Request, owner: str, name: str, ref: str) -> _Response:
        repo = self._visible_repo(req, owner, name)
        sha = self._resolve(repo, ref)
        if sha is None:
            raise _invalid(f"No commit found for SHA: {ref}")
        commit = self._commit(sha)
        before = self._commit(commit.parents[0]).tree if commit.parents and commit.parents[0] in self._objects else None
        files, headers = self._page(req, self._diff(before, commit.tree), default=300, maximum=300)
        return _Response(200, {**self._commit_json(repo, sha), "files": files}, headers)

    def _compare(self, req: _Request, owner: str, name: str, basehead: str) -> _Response:
        repo = self._visible_repo(req, owner, name)
        base_name, separator, head_name = basehead.partition("...")
        if not separator:
            raise _not_found()
        base, head = self._resolve_across(repo, base_name), self._resolve_across(repo, head_name)
        if base is None or head is None:
            raise _not_found()
        merge_base = self._merge_base(base, head)
        if merge_base is None:
            raise _not_found(f"No common ancestor between {base_name} and {head_name}.")
        head_side, base_side = self._ancestors(head), self._ancestors(base)
        ahead = sorted(head_side - base_side, key=lambda s: (self._commit(s).committer.date, s))
        behind = len(base_side - head_side)
        status = "identical" if base == head else "behind" if not ahead else "ahead" if not behind else "diverged"
        commits, headers = self._page(req, [self._commit_json(repo, s) for s in ahead], default=250, maximum=1000)
        body = {
            "url": f"{self._repo_url(repo)}/compare/{urllib.parse.quote(basehead)}",
            "html_url": f"{self.web_url}/{repo.full_name}/compare/{basehead}",
            "permalink_url": f"{self.web_url}/{repo.full_name}/compare/{base}...{head}",
            "diff_url": f"{self.web_url}/{repo.full_name}/compare/{basehead}.diff",
            "patch_url": f"{self.web_url}/{repo.full_name}/compare/{basehead}.patch",
            "base_commit": self._commit_json(repo, base),
            "merge_base_commit": self._commit_json(repo, merge_base),
            "status": status,
            "ahead_by": len(ahead),
            "behind_by": behind,
            "total_commits": len(ahead),
            "commits": commits,
            "files": self._diff(self._commit(merge_base).tree, self._commit(head).tree),
        }
        return _Response(200, body, headers)

    # ------------------------------------------------------------------ endpoints: git data

    def _post_blob(self, req: _Request, owner: str, name: str) -> _Response:
        repo = self._writable_repo(req, owner, name)
        content, encoding = req.body.get("content"), req.body.get("encoding", "utf-8")
        if not isinstance(content, str) or encoding not in {"utf-8", "base64"}:
            raise _invalid('Invalid request.\n\n"content" wasn\'t supplied.')
        try:
            data = base64.b64decode(content, validate=True) if encoding == "base64" else content.encode()
        except ValueError:
            raise _invalid("Invalid request.\n\nContent is not valid Base64.") from None
        sha = self._store(_Blob(data))
        return _Response(201, {"sha": sha, "url": f"{self._repo_url(repo)}/git/blobs/{sha}"})

    def _get_blob(self, req: _Request, owner: str, name: str, sha: str) -> _Response:
        repo = self._visible_repo(req, owner, name)
        blob = self._objects.get(sha)
        if not isinstance(blob, _Blob):
            raise _not_found()
        body = {
            "sha": sha,
            "node_id": f"B_{sha[:12]}",
            "size": len(blob.data),
            "url": f"{self._repo_url(repo)}/git/blobs/{sha}",
            "content": _encode_content(blob.data),
            "encoding": "base64",
        }
        return _Response(200, body)

    def _post_tree(self, req: _Request, owner: str, name: str) -> _Response:
        repo = self._writable_repo(req, owner, name)
        items, base_tree = req.body.get("tree"), req.body.get("base_tree")
        if not isinstance(items, list):
            raise _invalid('Invalid request.\n\n"tree" wasn\'t supplied.')
        if base_tree is not None and not isinstance(self._objects.get(base_tree), _Tree):
            raise _invalid("Invalid request.\n\nbase_tree is not a valid tree.")
        flat = self._flatten(base_tree) if base_tree else {}
        for item in items:
            self._apply_tree_item(flat, item)
        sha = self._write_tree(flat)
        return _Response(201, self._tree_json(repo, sha, recursive=False))

    def _apply_tree_item(self, flat: dict[str, _Entry], item: Any) -> None:
        if not isinstance(item, dict) or not isinstance(item.get("path"), str):
            raise _invalid("Invalid tree info")
        path = item["path"].strip("/")
        mode = item.get("mode", "100644")
        kind = item.get("type", _TREE_MODES.get(mode, "blob"))
        if _TREE_MODES.get(mode) != kind:
            raise _invalid(f"Invalid request.\n\nmode {mode!r} does not match type {kind!r} for {path}")
        self._remove_path(flat, path)
        if item.get("content") is not None:
            if kind != "blob":
                raise _invalid("Invalid tree info")
            flat[path] = _Entry(mode, "blob", self._store(_Blob(str(item["content"]).encode())))
        elif item.get("sha") is not None:
            sha = item["sha"]
            target = self._objects.get(sha)
            if kind == "tree":
                if not isinstance(target, _Tree):
                    raise _invalid("Invalid request.\n\ntree.sha is not a valid tree.")
                flat.update({f"{path}/{sub}": entry for sub, entry in self._flatten(sha).items()})
                return
            if kind == "blob" and not isinstance(target, _Blob):
                raise _invalid(f"Invalid request.\n\ntree.sha {sha} is not a valid blob.")
            flat[path] = _Entry(mode, kind, sha)
        elif "sha" not in item:
            raise _invalid('Invalid request.\n\nEither "sha" or "content" must be supplied.')
        else:
            return  # "sha": null deletes the path, already removed
        self._drop_parent_files(flat, path)

    def _get_tree(self, req: _Request, owner: str, name: str, sha: str) -> _Response:
        repo = self._visible_repo(req, owner, name)
        target = self._objects.get(sha)
        if not isinstance(target, _Tree):
            commit_sha = self._resolve(repo, sha)
            if commit_sha is None:
                raise _not_found()
            sha = self._commit(commit_sha).tree
        recursive = req.query.get("recursive", "") not in {"", "0", "false"}
        return _Response(200, self._tree_json(repo, sha, recursive=recursive))

    def _post_git_commit(self, req: _Request, owner: str, name: str) -> _Response:
        repo = self._writable_repo(req, owner, name)
        assert req.actor is not None
        body = req.body
        tree, parents, message = body.get("tree"), body.get("parents", []), body.get("message")
        if not isinstance(message, str):
            raise _invalid('Invalid request.\n\n"message" wasn\'t supplied.')
        if not isinstance(self._objects.get(tree or ""), _Tree):
            raise _invalid("Tree SHA does not exist")
        if not isinstance(parents, list) or not all(isinstance(self._objects.get(p), _Commit) for p in parents):
            raise _invalid("Parent SHA does not exist or is not a commit object")
        moment = self._tick()
        login = req.actor.login
        default = {"name": login, "email": f"{self._user_id(login)}+{login}@users.noreply.github.com"}
        author = self._person(body.get("author"), default, moment)
        committer = self._person(body.get("committer"), default, author.date)
        sha = self._store(_Commit(tree, tuple(parents), message, author, committer))
        return _Response(201, self._git_commit_json(repo, sha))

    def _get_git_commit(self, req: _Request, owner: str, name: str, sha: str) -> _Response:
        repo = self._visible_repo(req, owner, name)
        if not isinstance(self._objects.get(sha), _Commit):
            raise _not_found()
        return _Response(200, self._git_commit_json(repo, sha))

    def _get_ref(self, req: _Request, owner: str, name: str, ref: str) -> _Response:
        repo = self._visible_repo(req, owner, name)
        full = self._full_ref(ref)
        if full not in repo.refs:
            raise _not_found()
        return _Response(200, self._ref_json(repo, full))

    def _get_refs(self, req: _Request, owner: str, name: str, ref: str) -> _Response:
        """Exact match gives one ref; otherwise refs below the given prefix are listed (github.com does both)."""
        repo = self._visible_repo(req, owner, name)
        full = self._full_ref(ref)
        if full in repo.refs:
            return _Response(200, self._ref_json(repo, full))
        found = [r for r in sorted(repo.refs) if r.startswith(f"{full.rstrip('/')}/")]
        if not found:
            raise _not_found()
        return self._paged(req, [self._ref_json(repo, r) for r in found])

    def _list_refs(self, req: _Request, owner: str, name: str) -> _Response:
        repo = self._visible_repo(req, owner, name)
        return self._paged(req, [self._ref_json(repo, r) for r in sorted(repo.refs)])

    def _matching_refs(self, req: _Request, owner: str, name: str, ref: str) -> _Response:
        repo = self._visible_repo(req, owner, name)
        full = self._full_ref(ref)
        return self._paged(req, [self._ref_json(repo, r) for r in sorted(repo.refs) if r.startswith(full)])

    def _post_ref(self, req: _Request, owner: str, name: str) -> _Response:
        repo = self._writable_repo(req, owner, name)
        ref, sha = req.body.get("ref"), req.body.get("sha")
        if not isinstance(ref, str) or not ref.startswith("refs/") or ref.count("/") < 2:
            raise _invalid("Reference name must start with 'refs/' and have at least two slashes.")
        if not isinstance(self._objects.get(sha or ""), _Commit):
            raise _invalid("Object does not exist")
        if ref in repo.refs:
            raise _invalid("Reference already exists")
        self._check_protection(repo, ref, creating=True)
        repo.refs[ref] = sha
        return _Response(201, self._ref_json(repo, ref))

    def _patch_ref(self, req: _Request, owner: str, name: str, ref: str) -> _Response:
        repo = self._writable_repo(req, owner, name)
        full = self._full_ref(ref)
        sha, force = req.body.get("sha"), bool(req.body.get("force", False))
        if full not in repo.refs:
            raise _invalid("Reference does not exist")
        if not isinstance(self._objects.get(sha or ""), _Commit):
            raise _invalid("Object does not exist")
        if not force and repo.refs[full] not in self._ancestors(sha):
            raise _invalid("Update is not a fast forward")
        self._check_protection(repo, full, creating=False)
        repo.refs[full] = sha
        return _Response(200, self._ref_json(repo, full))

    def _delete_ref(self, req: _Request, owner: str, name: str, ref: str) -> _Response:
        repo = self._writable_repo(req, owner, name)
        full = self._full_ref(ref)
        if full in repo.protected and full in repo.refs:
            raise _ApiError(422, "Cannot delete a protected branch", documentation_url=PROTECTED_BRANCH_DOCS)
        if repo.refs.pop(full, None) is None:
            raise _invalid("Reference does not exist")
        return _Response(204)

    @staticmethod
    def _check_protection(repo: _Repo, ref: str, *, creating: bool) -> None:
        kind = repo.protected.get(ref)
        if kind == "classic":
            raise _ApiError(422, CLASSIC_UPDATE_REFUSED, documentation_url=PROTECTED_BRANCH_DOCS)
        if kind == "ruleset" and creating:
            raise _ApiError(422, RULESET_CREATE_REFUSED, documentation_url=CREATE_REF_DOCS)
        if kind == "ruleset":
            raise _ApiError(422, RULESET_UPDATE_REFUSED, documentation_url=UPDATE_REF_DOCS)

    def _get_contents(self, req: _Request, owner: str, name: str, path: str) -> _Response:
        repo = self._visible_repo(req, owner, name)
        ref = req.query.get("ref") or repo.default_branch
        sha = self._resolve(repo, ref)
        if sha is None:
            raise _not_found(f"No commit found for the ref {ref}")
        clean = path.strip("/")
        entry = self._lookup(self._commit(sha).tree, clean)
        if entry is None:
            raise _not_found()
        if entry.type == "tree":
            tree = self._objects[entry.sha]
            assert isinstance(tree, _Tree)
            listing = [
                self._content_json(repo, ref, f"{clean}/{sub}".strip("/"), child, with_content=False)
                for sub, child in tree.entries
            ]
            return _Response(200, listing)
        return _Response(200, self._content_json(repo, ref, clean, entry, with_content=True))

    # ------------------------------------------------------------------ state helpers

    @staticmethod
    def _key(full_name: str) -> str:
        return full_name.lower()

    def _add_repo(self, full_name: str, *, default_branch: str, private: bool, fork: bool = False) -> None:
        if full_name.count("/") != 1:
            raise ValueError(f"repository names look like owner/name, not {full_name!r}")
        self._repos[self._key(full_name)] = _Repo(self._new_id(), full_name, default_branch, private, fork)

    def _repo_record(self, full_name: str) -> _Repo:
        repo = self._repos.get(self._key(full_name))
        if repo is None:
            raise KeyError(f"no repository {full_name!r}; call add_repo first")
        return repo

    def _visible_repo(self, req: _Request, owner: str, name: str) -> _Repo:
        repo = self._repos.get(self._key(f"{owner}/{name}"))
        if repo is None or (repo.private and req.actor is None):
            raise _not_found()
        return repo

    def _writable_repo(self, req: _Request, owner: str, name: str) -> _Repo:
        repo = self._visible_repo(req, owner, name)
        if req.actor is None:
            raise _ApiError(401, "Requires authentication")
        return repo

    def _issue_pull(self, repo: _Repo, number: int) -> _Pull:
        pull = self._pulls.get((self._key(repo.full_name), number))
        if pull is None:
            raise _not_found()
        return pull

    def _comment_record(self, repo: _Repo, comment_id: int) -> _Comment:
        comment = self._comments.get(comment_id)
        if comment is None or comment.repo != self._key(repo.full_name):
            raise _not_found()
        return comment

    def _check_run_record(self, repo: _Repo, run_id: int) -> _CheckRun:
        run = self._check_runs.get(run_id)
        if run is None or run.repo != self._key(repo.full_name):
            raise _not_found()
        return run

    def _comment_body(self, req: _Request) -> str:
        body = req.body.get("body")
        if not isinstance(body, str):
            raise _invalid('Invalid request.\n\n"body" wasn\'t supplied.')
        if len(body) > COMMENT_BODY_LIMIT:
            message = f"body is too long (maximum is {COMMENT_BODY_LIMIT} characters)"
            error = {"resource": "IssueComment", "code": "custom", "field": "body", "message": message}
            raise _invalid("Validation Failed", errors=[error])
        return body

    def _create_comment(self, repo: _Repo, number: int, body: str, actor: _Actor) -> _Comment:
        now = _now()
        comment = _Comment(
            self._new_id(), self._key(repo.full_name), number, body, actor.login, actor.user_type, now, now
        )
        self._comments[comment.id] = comment
        return comment

    def _new_id(self) -> int:
        self._next_id += 1
        return self._next_id

    def _user_id(self, login: str) -> int:
        return self._user_ids.setdefault(login, 500 + len(self._user_ids))

    def _tick(self) -> datetime:
        self._clock += timedelta(minutes=1)
        return self._clock

    @staticmethod
    def _person(given: Any, default: dict[str, str], moment: datetime) -> _Person:
        given = given if isinstance(given, dict) else {}
        return _Person(
            given.get("name", default["name"]),
            given.get("email", default["email"]),
            _parse_date(given.get("date"), moment),
        )

    # ------------------------------------------------------------------ git helpers

    def _store(self, obj: _Object, sha: str | None = None) -> str:
        key = sha or _git_sha(obj)
        self._objects[key] = obj
        return key

    def _commit(self, sha: str) -> _Commit:
        commit = self._objects.get(sha)
        if not isinstance(commit, _Commit):
            raise _invalid(f"No commit found for SHA: {sha}")
        return commit

    @staticmethod
    def _full_ref(ref: str) -> str:
        return ref if ref.startswith("refs/") else f"refs/{ref}"

    def _resolve(self, repo: _Repo, ref: str) -> str | None:
        """A commit sha for a sha, abbreviated sha, full ref, heads/x or tags/x, or branch/tag name."""
        if isinstance(self._objects.get(ref), _Commit):
            return ref
        for candidate in (ref, f"refs/{ref}", f"refs/heads/{ref}", f"refs/tags/{ref}"):
            if candidate in repo.refs:
                return repo.refs[candidate]
        if re.fullmatch(r"[0-9a-f]{7,39}", ref):
            matches = [s for s, o in self._objects.items() if s.startswith(ref) and isinstance(o, _Commit)]
            if len(matches) == 1:
                return matches[0]
        return None

    def _resolve_across(self, repo: _Repo, ref: str) -> str | None:
        """Like `_resolve`, also for compare's `owner:branch` form naming a fork in the same network."""
        owner, colon, rest = ref.partition(":")
        if colon:
            name = repo.full_name.split("/")[1]
            other = self._repos.get(self._key(f"{owner}/{name}"), repo)
            return self._resolve(other, rest)
        return self._resolve(repo, ref)

    def _ancestors(self, sha: str) -> set[str]:
        seen: set[str] = set()
        stack = [sha]
        while stack:
            current = stack.pop()
            if current in seen or not isinstance(self._objects.get(current), _Commit):
                continue
            seen.add(current)
            stack.extend(self._commit(current).parents)
        return seen

    def _merge_base(self, base: str, head: str) -> str | None:
        common = self._ancestors(base) & self._ancestors(head)
        dominated: set[str] = set()
        stack = [parent for sha in common for parent in self._commit(sha).parents]
        while stack:
            current = stack.pop()
            if current not in dominated and current in common:
                dominated.add(current)
                stack.extend(self._commit(current).parents)
        best = common - dominated
        return max(best, key=lambda s: (self._commit(s).committer.date, s)) if best else None

    def _flatten(self, tree_sha: str, prefix: str = "") -> dict[str, _Entry]:
        tree = self._objects[tree_sha]
        assert isinstance(tree, _Tree)
        flat: dict[str, _Entry] = {}
        for name, entry in tree.entries:
            if entry.type == "tree":
                flat.update(self._flatten(entry.sha, f"{prefix}{name}/"))
            else:
                flat[f"{prefix}{name}"] = entry
        return flat

    def _write_tree(self, flat: Mapping[str, _Entry]) -> str:
        direct: dict[str, _Entry] = {}
        nested: dict[str, dict[str, _Entry]] = {}
        for path, entry in flat.items():
            head, slash, rest = path.partition("/")
            if slash:
                nested.setdefault(head, {})[rest] = entry
            else:
                direct[head] = entry
        for name, children in nested.items():
            direct[name] = _Entry("040000", "tree", self._write_tree(children))
        return self._store(_Tree(tuple(sorted(direct.items(), key=_tree_order))))

    @staticmethod
    def _remove_path(flat: dict[str, _Entry], path: str) -> None:
        flat.pop(path, None)
        for key in [k for k in flat if k.startswith(f"{path}/")]:
            del flat[key]

    @staticmethod
    def _drop_parent_files(flat: dict[str, _Entry], path: str) -> None:
        """A file at a/b replaces a file at a."""
        parts = path.split("/")
        for depth in range(1, len(parts)):
            flat.pop("/".join(parts[:depth]), None)

    def _lookup(self, tree_sha: str, path: str) -> _Entry | None:
        entry = _Entry("040000", "tree", tree_sha)
        for part in (p for p in path.split("/") if p):
            tree = self._objects.get(entry.sha)
            if not isinstance(tree, _Tree):
                return None
            found = dict(tree.entries).get(part)
            if found is None:
                return None
            entry = found
        return entry

    def _diff(self, before_tree: str | None, after_tree: str) -> list[dict[str, Any]]:
        before = self._flatten(before_tree) if before_tree else {}
        after = self._flatten(after_tree)
        files = []
        for path in sorted(before.keys() | after.keys()):
            old, new = before.get(path), after.get(path)
            if old == new:
                continue
            status = "added" if old is None else "removed" if new is None else "modified"
            sha = new.sha if new is not None else old.sha if old is not None else ""
            files.append({"sha": sha, "filename": path, "status": status, "additions": 0, "deletions": 0, "changes": 0})
        return files

    # ------------------------------------------------------------------ pagination

    def _page(
        self, req: _Request, items: list[Any], *, default: int = 30, maximum: int = 100
    ) -> tuple[list[Any], dict[str, str]]:
        def number(key: str, fallback: int) -> int:
            try:
                return int(req.query.get(key, fallback))
            except ValueError:
                return fallback

        per_page = min(max(number("per_page", default), 1), maximum)
        page = max(number("page", 1), 1)
        last = max(1, math.ceil(len(items) / per_page))

        def link(target: int, rel: str) -> str:
            query = urllib.parse.urlencode({**req.query, "per_page": per_page, "page": target})
            return f'<{self.url}{req.path}?{query}>; rel="{rel}"'

        links = []
        if page < last:
            links += [link(page + 1, "next"), link(last, "last")]
        if page > 1:
            links += [link(1, "first"), link(min(page - 1, last), "prev")]
        headers = {"Link": ", ".join(links)} if links else {}
        return items[(page - 1) * per_page : page * per_page], headers

    def _paged(self, req: _Request, items: list[Any]) -> _Response:
        page, headers = self._page(req, items)
        return _Response(200, page, headers)

    # ------------------------------------------------------------------ JSON shapes

    def _repo_url(self, repo: _Repo) -> str:
        return f"{self.url}/repos/{repo.full_name}"

    def _user_json(self, login: str, user_type: str = "User") -> dict[str, Any]:
        user_id = self._user_id(login)
        quoted = urllib.parse.quote(login)
        return {
            "login": login,
            "id": user_id,
            "node_id": f"U_{user_id}",
            "type": user_type,
            "site_admin": False,
            "url": f"{self.url}/users/{quoted}",
            "html_url": f"{self.web_url}/{quoted}",
            "avatar_url": f"{self.web_url}/avatars/{quoted}",
        }

    def _repo_json(self, repo: _Repo) -> dict[str, Any]:
        owner = repo.full_name.split("/")[0]
        return {
            "id": repo.id,
            "node_id": f"R_{repo.id}",
            "name": repo.full_name.split("/")[1],
            "full_name": repo.full_name,
            "owner": self._user_json(owner),
            "private": repo.private,
            "visibility": "private" if repo.private else "public",
            "fork": repo.fork,
            "archived": False,
            "disabled": False,
            "description": None,
            "default_branch": repo.default_branch,
            "url": self._repo_url(repo),
            "html_url": f"{self.web_url}/{repo.full_name}",
            "clone_url": f"{self.web_url}/{repo.full_name}.git",
            "created_at": "2024-01-01T00:00:00Z",
            "updated_at": "2024-01-01T00:00:00Z",
            "pushed_at": "2024-01-01T00:00:00Z",
        }

    def _pull_part_json(self, repo_name: str, ref: str, sha: str) -> dict[str, Any]:
        repo = self._repo_record(repo_name)
        owner = repo.full_name.split("/")[0]
        return {
            "label": f"{owner}:{ref}",
            "ref": ref,
            "sha": sha,
            "user": self._user_json(owner),
            "repo": self._repo_json(repo),
        }

    def _pull_json(self, repo: _Repo, pull: _Pull) -> dict[str, Any]:
        url = f"{self._repo_url(repo)}/pulls/{pull.number}"
        issue_url = f"{self._repo_url(repo)}/issues/{pull.number}"
        return {
            "id": pull.id,
            "node_id": f"PR_{pull.id}",
            "number": pull.number,
            "state": pull.state,
            "title": pull.title,
            "body": None,
            "draft": False,
            "merged": False,
            "locked": False,
            "user": self._user_json(pull.author),
            "url": url,
            "html_url": f"{self.web_url}/{repo.full_name}/pull/{pull.number}",
            "issue_url": issue_url,
            "comments_url": f"{issue_url}/comments",
            "statuses_url": f"{self._repo_url(repo)}/statuses/{pull.head_sha}",
            "commits_url": f"{url}/commits",
            "head": self._pull_part_json(pull.head_repo, pull.head_ref, pull.head_sha),
            "base": self._pull_part_json(repo.full_name, pull.base_ref, pull.base_sha),
            "created_at": "2024-01-01T00:00:00Z",
            "updated_at": "2024-01-01T00:00:00Z",
        }

    def _issue_json(self, repo: _Repo, pull: _Pull) -> dict[str, Any]:
        url = f"{self._repo_url(repo)}/issues/{pull.number}"
        key = self._key(repo.full_name)
        html_url = f"{self.web_url}/{repo.full_name}/pull/{pull.number}"
        return {
            "id": pull.id + 1,
            "node_id": f"I_{pull.id}",
            "number": pull.number,
            "state": pull.state,
            "title": pull.title,
            "body": None,
            "user": self._user_json(pull.author),
            "labels": [],
            "assignees": [],
            "locked": False,
            "comments": sum(1 for c in self._comments.values() if c.repo == key and c.number == pull.number),
            "url": url,
            "repository_url": self._repo_url(repo),
            "comments_url": f"{url}/comments",
            "html_url": html_url,
            "pull_request": {"url": f"{self._repo_url(repo)}/pulls/{pull.number}", "html_url": html_url},
            "created_at": "2024-01-01T00:00:00Z",
            "updated_at": "2024-01-01T00:00:00Z",
        }

    def _comment_json(self, repo: _Repo, comment: _Comment) -> dict[str, Any]:
        return {
            "id": comment.id,
            "node_id": f"IC_{comment.id}",
            "url": f"{self._repo_url(repo)}/issues/comments/{comment.id}",
            "html_url": f"{self.web_url}/{repo.full_name}/pull/{comment.number}#issuecomment-{comment.id}",
            "issue_url": f"{self._repo_url(repo)}/issues/{comment.number}",
            "body": comment.body,
            "user": self._user_json(comment.login, comment.user_type),
            "author_association": "NONE" if comment.user_type == "Bot" else "MEMBER",
            "performed_via_github_app": None,
            "created_at": comment.created_at,
            "updated_at": comment.updated_at,
        }

    def _check_run_json(self, repo: _Repo, run: _CheckRun) -> dict[str, Any]:
        url = f"{self._repo_url(repo)}/check-runs/{run.id}"
        output = {"title": None, "summary": None, "text": None, **run.output}
        app = {**_GITHUB_ACTIONS_APP, "owner": self._user_json("github", "Organization")}
        if run.app_login != "github-actions[bot]":
            app = {**app, "slug": run.app_login.removesuffix("[bot]"), "name": run.app_login}
        return {
            "id": run.id,
            "node_id": f"CR_{run.id}",
            "name": run.name,
            "head_sha": run.head_sha,
            "external_id": run.external_id,
            "url": url,
            "html_url": f"{self.web_url}/{repo.full_name}/runs/{run.id}",
            "details_url": run.details_url,
            "status": run.status,
            "conclusion": run.conclusion,
            "started_at": run.started_at,
            "completed_at": run.completed_at,
            "output": {**output, "annotations_count": 0, "annotations_url": f"{url}/annotations"},
            "check_suite": {"id": run.id + 1},
            "app": app,
            "pull_requests": [],
        }

    def _status_json(self, repo: _Repo, status: _Status) -> dict[str, Any]:
        return {
            "id": status.id,
            "node_id": f"SC_{status.id}",
            "url": f"{self._repo_url(repo)}/statuses/{status.sha}",
            "state": status.state,
            "description": status.description,
            "target_url": status.target_url,
            "context": status.context,
            "avatar_url": None,
            "creator": self._user_json(status.login, status.user_type),
            "created_at": status.created_at,
            "updated_at": status.created_at,
        }

    def _git_commit_json(self, repo: _Repo, sha: str) -> dict[str, Any]:
        commit = self._commit(sha)

        def person(p: _Person) -> dict[str, str]:
            return {"name": p.name, "email": p.email, "date": _iso(p.date)}

        return {
            "sha": sha,
            "node_id": f"C_{sha[:12]}",
            "url": f"{self._repo_url(repo)}/git/commits/{sha}",
            "html_url": f"{self.web_url}/{repo.full_name}/commit/{sha}",
            "author": person(commit.author),
            "committer": person(commit.committer),
            "message": commit.message,
            "tree": {"sha": commit.tree, "url": f"{self._repo_url(repo)}/git/trees/{commit.tree}"},
            "parents": [
                {
                    "sha": p,
                    "url": f"{self._repo_url(repo)}/git/commits/{p}",
                    "html_url": f"{self.web_url}/{repo.full_name}/commit/{p}",
                }
                for p in commit.parents
            ],
            "verification": {"verified": False, "reason": "unsigned", "signature": None, "payload": None},
        }

    def _commit_json(self, repo: _Repo, sha: str) -> dict[str, Any]:
        commit = self._commit(sha)
        git = self._git_commit_json(repo, sha)
        return {
            "sha": sha,
            "node_id": git["node_id"],
            "url": f"{self._repo_url(repo)}/commits/{sha}",
            "html_url": git["html_url"],
            "comments_url": f"{self._repo_url(repo)}/commits/{sha}/comments",
            "commit": {k: v for k, v in git.items() if k not in {"sha", "node_id", "html_url", "parents"}}
            | {"comment_count": 0},
            "author": None,
            "committer": None,
            "parents": [
                {
                    "sha": p,
                    "url": f"{self._repo_url(repo)}/commits/{p}",
                    "html_url": f"{self.web_url}/{repo.full_name}/commit/{p}",
                }
                for p in commit.parents
            ],
        }

    def _tree_entries(self, repo: _Repo, tree_sha: str, prefix: str, recursive: bool) -> Iterator[dict[str, Any]]:
        tree = self._objects[tree_sha]
        assert isinstance(tree, _Tree)
        for name, entry in tree.entries:
            item: dict[str, Any] = {"path": f"{prefix}{name}", "mode": entry.mode, "type": entry.type, "sha": entry.sha}
            target = self._objects.get(entry.sha)
            if isinstance(target, _Blob):
                item["size"] = len(target.data)
            if entry.type != "commit":
                item["url"] = f"{self._repo_url(repo)}/git/{entry.type}s/{entry.sha}"
            yield item
            if recursive and entry.type == "tree":
                yield from self._tree_entries(repo, entry.sha, f"{prefix}{name}/", recursive)

    def _tree_json(self, repo: _Repo, sha: str, *, recursive: bool) -> dict[str, Any]:
        return {
            "sha": sha,
            "url": f"{self._repo_url(repo)}/git/trees/{sha}",
            "tree": list(self._tree_entries(repo, sha, "", recursive)),
            "truncated": False,
        }

    def _ref_json(self, repo: _Repo, ref: str) -> dict[str, Any]:
        sha = repo.refs[ref]
        return {
            "ref": ref,
            "node_id": f"REF_{repo.id}_{ref}",
            "url": f"{self._repo_url(repo)}/git/{urllib.parse.quote(ref)}",
            "object": {"sha": sha, "type": "commit", "url": f"{self._repo_url(repo)}/git/commits/{sha}"},
        }

    def _content_json(self, repo: _Repo, ref: str, path: str, entry: _Entry, *, with_content: bool) -> dict[str, Any]:
        kind = {"blob": "file", "tree": "dir", "commit": "submodule"}[entry.type]
        target = self._objects.get(entry.sha)
        quoted = urllib.parse.quote(path)
        url = f"{self._repo_url(repo)}/contents/{quoted}?ref={urllib.parse.quote(ref, safe='')}"
        git_url = f"{self._repo_url(repo)}/git/{entry.type}s/{entry.sha}"
        html_url = f"{self.web_url}/{repo.full_name}/blob/{ref}/{quoted}"
        body: dict[str, Any] = {
            "type": kind,
            "name": path.rsplit("/", 1)[-1],
            "path": path,
            "sha": entry.sha,
            "size": len(target.data) if isinstance(target, _Blob) else 0,
            "url": url,
            "git_url": git_url,
            "html_url": html_url,
            "download_url": f"{self.web_url}/raw/{repo.full_name}/{ref}/{quoted}" if kind == "file" else None,
            "_links": {"self": url, "git": git_url, "html": html_url},
        }
        if with_content and isinstance(target, _Blob):
            body |= {"encoding": "base64", "content": _encode_content(target.data)}
        return body
