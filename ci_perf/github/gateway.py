"""The only module that talks to GitHub (through PyGithub).

Each method is one thing the action needs, in our words, and every PyGithub or HTTP
failure is translated here: 404 on a read is ``None``; a 403 that is not a rate limit is
``PermissionDenied`` naming the permission to grant; anything else, after PyGithub's bounded
retries (5xx, 429 and rate-limit 403 with their retry headers), is ``GitHubError``.
``GITHUB_API_URL`` points the client at GitHub Enterprise, or at the tests' fake server.

Two writes are not idempotent: creating a comment and creating a check run. A 5xx (GitHub's
front end timing out) or a connection lost before the answer may hide a create that took
effect, so these two are never resent blindly: they go through a second client whose retries
cover only refusals (rate limits), and after an error the gateway looks the object up (the
comment by its marker and our author, the check run by its name and a fresh ``external_id`` on
the head commit) and sends the create again only when it is not there (``_create_once``).
"""

from __future__ import annotations

import base64
import logging
import time
import uuid
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from typing import TypeVar

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
from github.IssueComment import IssueComment
from github.PullRequest import PullRequest
from requests.exceptions import RetryError

from ci_perf.errors import GitHubError, PermissionDenied

GITHUB_ACTIONS_BOT = "github-actions[bot]"
# GitHub's 422 messages for a lost race on a ref (as opposed to a protected branch refusing the write)
NOT_FAST_FORWARD = "Update is not a fast forward"
REF_EXISTS = "Reference already exists"
_T = TypeVar("_T")


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


def _retry(settings: GatewaySettings, *, creates: bool) -> GithubRetry:
    """urllib3's retries under PyGithub: every request, or (``creates``) only those GitHub refused outright.

    PyGithub's own default retries 5xx and rate-limit 403s (waiting for their reset) for GET and POST; we
    add 429, and PATCH (editing a comment or moving a ref to a given sha is idempotent). Posting blobs,
    trees and commits is idempotent too (content-addressed). For the non-idempotent creates only a
    429 or a rate-limit 403 (refused before anything happened) is resent, and a read error (the request
    went out, its answer did not come back) is raised at once (``read=False``), as is a 5xx.
    """
    return GithubRetry(
        total=settings.retries,
        backoff_factor=settings.backoff_s,
        status_forcelist=[403, 429] if creates else [403, 429, *range(500, 600)],
        allowed_methods={"POST"} if creates else {"GET", "POST", "PATCH", "PUT", "DELETE", "HEAD"},
        read=False if creates else None,
        max_rate_limit_wait=settings.max_rate_limit_wait_s,
        secondary_rate_wait=min(60.0, settings.max_rate_limit_wait_s),
    )


def _client(*, token: str, api_url: str, settings: GatewaySettings, creates: bool) -> Github:
    return Github(
        auth=Auth.Token(token),
        base_url=api_url,
        retry=_retry(settings, creates=creates),
        timeout=settings.timeout_s,
        seconds_between_requests=0,
        seconds_between_writes=settings.seconds_between_writes,
        lazy=True,  # objects load on first use: fewer requests
    )


class GitHubGateway:
    def __init__(self, *, token: str, api_url: str, repository: str, settings: GatewaySettings) -> None:
        # PyGithub logs every refused request at INFO to stderr, including the expected 403 on /user
        logging.getLogger("github").setLevel(logging.WARNING)
        self._settings = settings
        self._github = _client(token=token, api_url=api_url, settings=settings, creates=False)
        self._once = _client(token=token, api_url=api_url, settings=settings, creates=True)
        self.repository = repository
        self._repo = self._github.get_repo(repository)
        self._once_repo = self._once.get_repo(repository)  # comments and check runs are created through it
        self._identity: str | None = None

    def close(self) -> None:
        self._github.close()
        self._once.close()

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
            return [_comment(c) for c in self._repo.get_issue(number).get_comments() if marker in (c.body or "")]

    # -- writing ---------------------------------------------------------------------------

    def create_comment(self, number: int, body: str, *, marker: str) -> Comment:
        """Post ``body`` (which carries ``marker``) on #``number``, once.

        Call it when no comment of ours carries ``marker`` (``publish.upsert_comment`` looks first): after
        a 5xx or a lost answer, a comment of ours with the marker is the one this call made (or one that a
        concurrent run made meanwhile), and is returned instead of posting a second.
        """
        if not marker:
            raise ValueError("create_comment needs the marker that finds the comment again")

        def find() -> Comment | None:
            me = self.identity()
            ours = [c for c in self.comments_with(number, marker) if c.author == me]
            return ours[-1] if ours else None

        return self._create_once(
            f"commenting on #{number}",
            permission="pull-requests: write",
            create=lambda: _comment(self._once_repo.get_issue(number).create_comment(body)),
            find=find,
        )

    def edit_comment(self, number: int, comment_id: int, body: str) -> str:
        with _translate("editing the ci-perf comment", permission="pull-requests: write"):
            comment = self._repo.get_issue(number).get_comment(comment_id)
            comment.edit(body)
            return comment.html_url

    def create_check_run(
        self, *, head_sha: str, name: str, conclusion: str, title: str, summary: str, details_url: str | None
    ) -> str:
        """A completed check run ``name`` on ``head_sha``, created once; returns its URL.

        A re-run of the job finds the earlier attempt's run of the same name on the same commit, so
        the run is told apart by an ``external_id`` of its own, which the lookup after an error matches.
        """
        external_id = f"ci-perf-{uuid.uuid4().hex}"

        def create() -> str:
            run = self._once_repo.create_check_run(
                name=name,
                head_sha=head_sha,
                status="completed",
                conclusion=conclusion,
                output={"title": title, "summary": summary},
                details_url=details_url or NotSet,
                external_id=external_id,
            )
            return str(run.html_url)

        def find() -> str | None:
            with _translate(f"looking for check run {name}", permission="checks: write"):
                runs = self._repo.get_commit(head_sha).get_check_runs(check_name=name, filter="all")
                return next((str(run.html_url) for run in runs if run.external_id == external_id), None)

        return self._create_once("creating the check run", permission="checks: write", create=create, find=find)

    def _create_once(
        self, what: str, *, permission: str, create: Callable[[], _T], find: Callable[[], _T | None]
    ) -> _T:
        """``create()``; after an error that may hide a create that took effect, ``find()`` before sending again."""
        failures = 0
        while True:
            try:
                with _translate(what, permission=permission):
                    return create()
            except GitHubError as exc:
                failures += 1
                if failures > self._settings.retries or not _may_have_taken_effect(exc):
                    raise
            time.sleep(self._settings.backoff_s * 2 ** (failures - 1))
            found = find()
            if found is not None:
                return found

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
        """Create ``branch`` at ``sha``; ``False`` when someone else created it first.

        GitHub answers 422 both when the branch exists and when a ruleset refuses to create it
        ("Reference update failed"), so the ref is read back: at ``sha``, it is our own create whose
        first answer was lost; absent, and GitHub did not say it exists (a read lagging behind the
        race), the create was refused: ``GitHubError`` saying the branch is protected.
        """
        refusal = self._write_ref(
            f"creating branch {branch}", lambda: self._repo.create_git_ref(f"refs/heads/{branch}", sha)
        )
        if refusal is None:
            return True
        tip = self.branch_tip(branch)
        if tip is None and _message_of(refusal) != REF_EXISTS:
            raise GitHubError(_protected_branch(branch, refusal, creating=True)) from refusal
        return tip == sha

    def move_branch(self, branch: str, sha: str, *, parent: str) -> bool:
        """Fast-forward ``branch`` from ``parent`` to ``sha``; ``False`` when it moved meanwhile (a lost race).

        GitHub answers 422 both to a lost race and to an update that branch protection or a ruleset
        refuses, so the ref is read back: a branch still at ``parent`` refused the update itself
        (``GitHubError`` saying it is protected), unless GitHub said "not a fast forward" (the read
        lagged behind the race); a branch at ``sha`` took our update, whose first answer was lost.
        """
        # loaded first: a lazy ref's url is the read-only /git/ref/ path; GitHub's answer has /git/refs/
        refusal = self._write_ref(
            f"updating branch {branch}",
            lambda: self._repo.get_git_ref(f"heads/{branch}").complete().edit(sha, force=False),
        )
        if refusal is None:
            return True
        tip = self.branch_tip(branch)
        if tip == parent and _message_of(refusal) != NOT_FAST_FORWARD:
            raise GitHubError(_protected_branch(branch, refusal, creating=False)) from refusal
        return tip == sha

    @staticmethod
    def _write_ref(what: str, write: Callable[[], object]) -> GithubException | None:
        """``write()``; GitHub's 422 refusal, or ``None`` when the ref was written."""
        with _translate(what, permission="contents: write"):
            try:
                write()
            except GithubException as exc:
                if exc.status != 422:
                    raise
                return exc
        return None


def _comment(made: IssueComment) -> Comment:
    return Comment(id=made.id, body=made.body, author=made.user.login, url=made.html_url)


def _may_have_taken_effect(error: GitHubError) -> bool:
    """A 5xx or a lost answer: the request may have been carried out; a refusal (4xx, rate limits) was not."""
    cause = error.__cause__
    if isinstance(cause, GithubException):
        return cause.status >= 500
    return isinstance(cause, OSError) and not isinstance(cause, RetryError)


def _protected_branch(branch: str, refusal: GithubException, *, creating: bool) -> str:
    said = _message_of(refusal)
    verb = "create" if creating else "update"
    return (
        f"GitHub refused to {verb} branch {branch} (422 {said}): the branch is protected by a branch protection "
        f"rule or a ruleset, and ci-perf records runs by pushing to it. Exclude {branch} from branch protection "
        "and rulesets (Settings → Rules → Rulesets, Settings → Branches), or give the action a github_token "
        "that is allowed to push to it (e.g. a GitHub App on the ruleset's bypass list)"
    )


def _message_of(exc: GithubException) -> str:
    message = exc.data.get("message") if isinstance(exc.data, dict) else None
    return " ".join(str(message or "").split())


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
        message = _message_of(exc)
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
