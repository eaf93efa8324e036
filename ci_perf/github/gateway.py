"""The only module that talks to GitHub (through PyGithub).

Each method is one thing the action needs, in our words, and every PyGithub or HTTP
failure is translated here: 404 on a read is ``None``; a 403 that is not a rate limit is
``PermissionDenied`` naming the permission to grant; anything else, after PyGithub's bounded
retries (5xx, 429 and rate-limit 403 with their retry headers), is ``GitHubError``.
``GITHUB_API_URL`` points the client at GitHub Enterprise, or at the tests' fake server.
"""

from __future__ import annotations

import base64
import logging
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass

from github import (
    Auth,
    Github,
    GithubException,
    GithubRetry,
    InputGitTreeElement,
    RateLimitExceededException,
    UnknownObjectException,
)
from github.GithubObject import NotSet
from github.PullRequest import PullRequest

from ci_perf.errors import GitHubError, PermissionDenied

GITHUB_ACTIONS_BOT = "github-actions[bot]"


@dataclass(frozen=True)
class GatewaySettings:
    """Retry and pacing. GitHub asks integrations to pace writes (secondary rate limits)."""

    retries: int = 4
    backoff_s: float = 1.0  # waits 1, 2, 4 … s between retries of a 5xx
    max_rate_limit_wait_s: float = 120.0
    seconds_between_writes: float = 1.0
    timeout_s: int = 30

    @classmethod
    def from_environ(cls, environ: Mapping[str, str]) -> GatewaySettings:
        """``CI_PERF_GITHUB_BACKOFF`` and ``CI_PERF_GITHUB_WRITE_INTERVAL`` (seconds) tune the pacing."""
        default = cls()
        return cls(
            backoff_s=_seconds(environ, "CI_PERF_GITHUB_BACKOFF", default.backoff_s),
            seconds_between_writes=_seconds(environ, "CI_PERF_GITHUB_WRITE_INTERVAL", default.seconds_between_writes),
        )


def _seconds(environ: Mapping[str, str], name: str, default: float) -> float:
    try:
        return max(0.0, float(environ[name]))
    except (KeyError, ValueError):
        return default


@dataclass(frozen=True)
class PullInfo:
    number: int
    head_sha: str
    head_ref: str
    base_ref: str
    base_sha: str
    fork: bool


@dataclass(frozen=True)
class Comment:
    id: int
    body: str
    author: str
    url: str


@dataclass(frozen=True)
class Tree:
    sha: str
    files: dict[str, str]  # path → blob sha


class GitHubGateway:
    def __init__(self, *, token: str, api_url: str, repository: str, settings: GatewaySettings) -> None:
        # PyGithub retries 5xx and rate-limit 403s (waiting for their reset); we add 429, and PATCH
        # (editing a comment or moving a ref to a given sha is idempotent), which it leaves out
        retry = GithubRetry(
            total=settings.retries,
            backoff_factor=settings.backoff_s,
            status_forcelist=[403, 429, *range(500, 600)],
            allowed_methods={"GET", "POST", "PATCH", "PUT", "DELETE", "HEAD"},
            max_rate_limit_wait=settings.max_rate_limit_wait_s,
            secondary_rate_wait=min(60.0, settings.max_rate_limit_wait_s),
        )
        # PyGithub logs every refused request at INFO to stderr, including the expected 403 on /user
        logging.getLogger("github").setLevel(logging.WARNING)
        self._github = Github(
            auth=Auth.Token(token),
            base_url=api_url,
            retry=retry,
            timeout=settings.timeout_s,
            seconds_between_requests=0,
            seconds_between_writes=settings.seconds_between_writes,
            lazy=True,  # objects load on first use: fewer requests
        )
        self.repository = repository
        self._repo = self._github.get_repo(repository)
        self._identity: str | None = None

    def close(self) -> None:
        self._github.close()

    # -- reading ---------------------------------------------------------------------------

    def identity(self) -> str:
        """Who our comments are written by: the token's user, or the Actions bot for ``GITHUB_TOKEN``."""
        if self._identity is None:
            try:
                with _translate("reading the token's user", permission=""):
                    self._identity = self._github.get_user().login
            except PermissionDenied:  # an installation token (GITHUB_TOKEN) cannot read /user
                self._identity = GITHUB_ACTIONS_BOT
        return self._identity

    def read_file(self, path: str, *, ref: str) -> str | None:
        with _translate(f"reading {path} at {ref[:12]}", permission="contents: read"):
            try:
                found = self._repo.get_contents(path, ref=ref)
            except UnknownObjectException:
                return None
        if isinstance(found, list):
            return None
        return found.decoded_content.decode("utf-8", errors="replace")

    def merge_base(self, base: str, head: str) -> str | None:
        with _translate("comparing the pull request with its base", permission="contents: read"):
            try:
                return self._repo.compare(base, head).merge_base_commit.sha
            except UnknownObjectException:
                return None

    def pull(self, number: int) -> PullInfo:
        with _translate(f"reading pull request #{number}", permission="pull-requests: read"):
            return _pull_info(self._repo.get_pull(number), self.repository)

    def open_pull_with_head(self, head_sha: str) -> PullInfo | None:
        """The open pull request whose head is ``head_sha`` (fork pull requests included)."""
        with _translate("listing open pull requests", permission="pull-requests: read"):
            for pull in self._repo.get_pulls(state="open"):
                if pull.head.sha == head_sha:
                    return _pull_info(pull, self.repository)
        return None

    def comments_with(self, number: int, marker: str) -> list[Comment]:
        with _translate(f"reading the comments of #{number}", permission="pull-requests: read"):
            return [
                Comment(id=c.id, body=c.body, author=c.user.login, url=c.html_url)
                for c in self._repo.get_issue(number).get_comments()
                if marker in (c.body or "")
            ]

    # -- writing ---------------------------------------------------------------------------

    def create_comment(self, number: int, body: str) -> Comment:
        with _translate(f"commenting on #{number}", permission="pull-requests: write"):
            made = self._repo.get_issue(number).create_comment(body)
        return Comment(id=made.id, body=made.body, author=made.user.login, url=made.html_url)

    def edit_comment(self, number: int, comment_id: int, body: str) -> str:
        with _translate("editing the ci-perf comment", permission="pull-requests: write"):
            comment = self._repo.get_issue(number).get_comment(comment_id)
            comment.edit(body)
            return comment.html_url

    def create_check_run(
        self, *, head_sha: str, name: str, conclusion: str, title: str, summary: str, details_url: str | None
    ) -> str:
        with _translate("creating the check run", permission="checks: write"):
            run = self._repo.create_check_run(
                name=name,
                head_sha=head_sha,
                status="completed",
                conclusion=conclusion,
                output={"title": title, "summary": summary},
                details_url=details_url or NotSet,
            )
            return str(run.html_url)

    def create_status(self, *, sha: str, state: str, description: str, context: str, target_url: str | None) -> None:
        with _translate("setting the commit status", permission="statuses: write"):
            self._repo.get_commit(sha).create_status(
                state=state, description=description[:140], context=context, target_url=target_url or NotSet
            )

    # -- git data (the data branch) ----------------------------------------------------------

    def branch_tip(self, branch: str) -> str | None:
        with _translate(f"reading branch {branch}", permission="contents: read"):
            try:
                return self._repo.get_git_ref(f"heads/{branch}").object.sha
            except UnknownObjectException:
                return None

    def tree_of(self, commit_sha: str) -> Tree:
        with _translate("reading the data branch", permission="contents: read"):
            commit = self._repo.get_git_commit(commit_sha)
            tree = self._repo.get_git_tree(commit.tree.sha, recursive=True)
            return Tree(sha=tree.sha, files={e.path: e.sha for e in tree.tree if e.type == "blob"})

    def read_blob(self, sha: str) -> bytes:
        with _translate("reading a file of the data branch", permission="contents: read"):
            blob = self._repo.get_git_blob(sha)
            return base64.b64decode(blob.content) if blob.encoding == "base64" else blob.content.encode()

    def commit_files(
        self, *, parent: str | None, base_tree: str | None, files: Mapping[str, bytes | None], message: str
    ) -> str:
        """A commit on top of ``parent`` that writes (or, with ``None``, deletes) ``files``; returns its sha."""
        with _translate("writing to the data branch", permission="contents: write"):
            elements = []
            for path, content in files.items():
                if content is None:
                    elements.append(InputGitTreeElement(path, "100644", "blob", sha=None))
                else:
                    blob = self._repo.create_git_blob(base64.b64encode(content).decode(), "base64")
                    elements.append(InputGitTreeElement(path, "100644", "blob", sha=blob.sha))
            if base_tree:
                tree = self._repo.create_git_tree(elements, self._repo.get_git_tree(base_tree))
            else:
                tree = self._repo.create_git_tree(elements)
            parents = [self._repo.get_git_commit(parent)] if parent else []
            return self._repo.create_git_commit(message, tree, parents).sha

    def create_branch(self, branch: str, sha: str) -> bool:
        """Create ``branch`` at ``sha``; ``False`` when it already exists (someone else was first)."""
        with _translate(f"creating branch {branch}", permission="contents: write"):
            try:
                self._repo.create_git_ref(f"refs/heads/{branch}", sha)
            except GithubException as exc:
                if exc.status == 422:
                    return False
                raise
        return True

    def move_branch(self, branch: str, sha: str) -> bool:
        """Fast-forward ``branch`` to ``sha``; ``False`` when it moved meanwhile (compare-and-swap lost)."""
        with _translate(f"updating branch {branch}", permission="contents: write"):
            try:
                # loaded first: a lazy ref's url is the read-only /git/ref/ path; GitHub's answer has /git/refs/
                self._repo.get_git_ref(f"heads/{branch}").complete().edit(sha, force=False)
            except GithubException as exc:
                if exc.status == 422:
                    return False
                raise
        return True


def _pull_info(pull: PullRequest, repository: str) -> PullInfo:
    head, base = pull.head, pull.base
    head_repo = head.repo.full_name if head.repo else None
    return PullInfo(
        number=pull.number,
        head_sha=head.sha,
        head_ref=head.ref,
        base_ref=base.ref,
        base_sha=base.sha,
        fork=head_repo != repository,
    )


@contextmanager
def _translate(what: str, *, permission: str) -> Iterator[None]:
    """PyGithub's and requests' exceptions → ours, with a sentence saying what we were doing."""
    try:
        yield
    except RateLimitExceededException as exc:
        raise GitHubError(f"GitHub's rate limit stopped {what}; its reset is too far away to wait for") from exc
    except GithubException as exc:
        message = exc.data.get("message") if isinstance(exc.data, dict) else None
        if exc.status == 403 and permission:
            raise PermissionDenied(
                f"GitHub refused {what} (403 {message or 'Forbidden'}); grant `{permission}` in the workflow's "
                "permissions",
                permission=permission,
            ) from exc
        if exc.status == 403:
            raise PermissionDenied(f"GitHub refused {what} (403 {message or 'Forbidden'})", permission="") from exc
        raise GitHubError(f"GitHub API error while {what}: {exc.status} {message or ''}".rstrip()) from exc
    except OSError as exc:  # requests' exceptions (connection, retries exhausted) are OSErrors
        raise GitHubError(f"GitHub API unreachable while {what} after retries: {type(exc).__name__}") from exc
