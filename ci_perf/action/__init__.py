"""``ci-perf action``: the GitHub Action's composition root.

Reads straight down: the runner's environment (``github.context``) → what to do
(``activities.decide``) → the run (``pipeline``) or, in report mode, an artifact → publish
(comment, check, job summary, outputs, ``junit.xml``). Exit codes as everywhere: 0 pass,
1 the gate failed, 2 bad input, 3 the environment failed. Publishing never decides the
verdict: when GitHub fails after retries, the files and the job summary are still written
and the exit code is 1 if the gate failed, else 3.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TextIO
from urllib.parse import urlsplit

from ci_perf.action.subject import Subject, against, change_subject
from ci_perf.action.watch import watch_data_branch
from ci_perf.activities import Decision, decide
from ci_perf.analysis.judge import Judgement
from ci_perf.config import Config, load_config, with_comparison
from ci_perf.errors import CiPerfError, ConfigError, GitHubError, InputError
from ci_perf.formatting import one_line
from ci_perf.github.context import ActionContext, ActionInputs
from ci_perf.github.gateway import GatewaySettings, GitHubGateway
from ci_perf.github.publish import CheckOutcome, CommentOutcome, check_name, publish_check, upsert_comment
from ci_perf.github.workflow import WorkflowLog, append_summary, write_outputs
from ci_perf.junit import render_junit
from ci_perf.loadtest.readiness import NotReady, is_loopback
from ci_perf.pipeline import ProgressLine, baseline_history, conclude, read_reruns, run_pipeline
from ci_perf.report import escape_markdown
from ci_perf.results import RunResult, parse_result
from ci_perf.store import BaselineStore
from ci_perf.store.github_branch import DataBranchStore
from ci_perf.store.local import LocalStore

MAX_ARTIFACT_BYTES = 20 * 1024 * 1024
FORK_RECIPE = """\
The token cannot write to this repository (a pull request from a fork gets a read-only token).
The comment was written to {path}. To post it, use the fork-safe pair of workflows
(README, "Pull requests from forks"):
  1. on: pull_request — run ci-perf (mode: check) and upload {out_dir} with actions/upload-artifact;
  2. on: workflow_run (of 1) — download that artifact and run ci-perf with mode: report.
The second workflow runs with a write token and never executes code from the pull request."""


@dataclass(frozen=True)
class Judged:
    """A judgement, its rendered report and where it lives, from a run or from an artifact."""

    judgement: Judgement
    markdown: str  # report.md: what the comment, the check and the job summary publish
    out_dir: Path
    head_sha: str | None
    pull: int | None


def run_action(environ: Mapping[str, str], *, cwd: Path, stream: TextIO, progress: ProgressLine | None = None) -> int:
    try:
        context = ActionContext.from_environ(environ, cwd=cwd)
    except CiPerfError as exc:  # a bad input: the job summary and the outputs still say so
        summary, output = (Path(p) if (p := environ.get(n)) else None for n in ("GITHUB_STEP_SUMMARY", "GITHUB_OUTPUT"))
        _could_not_run(summary, output, exc)
        raise
    out = WorkflowLog(stream, on_actions=context.on_actions)
    if context.inputs.github_token:
        out.mask(context.inputs.github_token)
    try:
        return _act(context, environ, out=out, progress=progress)
    except CiPerfError as exc:
        if isinstance(exc, ConfigError):
            out.config_problems(str(exc), workspace=context.workspace)
        _could_not_run(context.summary_path, context.output_path, exc, suite=context.inputs.id)
        raise


def _act(context: ActionContext, environ: Mapping[str, str], *, out: WorkflowLog, progress: ProgressLine | None) -> int:
    decision = decide(
        mode=context.inputs.mode,
        event_name=context.event_name,
        ref=context.ref,
        default_branch=context.default_branch,
        has_change=context.change is not None,
    )
    out.info(f"{decision.activity} ({decision.why})")
    if context.event_name == "pull_request_target" and not context.inputs.allow_pull_request_target:
        raise InputError(PULL_REQUEST_TARGET)
    config = _load_config(context)
    gateway = _gateway(context, decision, environ)
    with _closing(gateway):
        if decision.activity == "watch":  # no load, no comment: the change points on the baseline branch
            assert gateway is not None
            return watch_data_branch(context, config, _data_branch(gateway, context.inputs), out)
        if decision.activity == "report-only":
            assert gateway is not None
            judged = _judge_artifact(context, config, gateway, out)
        else:
            judged = _run(context, decision, config, gateway, environ=environ, out=out, progress=progress)
        return _publish(context, decision, judged, gateway, out)


PULL_REQUEST_TARGET = (
    "pull_request_target runs the pull request's code (its locustfile) with a token that can write to this "
    "repository; ci-perf refuses it. Use on: pull_request, with the fork-safe workflow_run pair for forks "
    '(README, "Pull requests from forks"), or set the input allow_pull_request_target: true if the workflow '
    "checks out only trusted code"
)


# -- inputs ------------------------------------------------------------------------------------


def _load_config(context: ActionContext) -> Config:
    inputs = context.inputs
    config = load_config(context.resolve(inputs.config))
    updates: dict[str, object] = {}
    if inputs.locustfile:
        locustfile = context.resolve(inputs.locustfile)
        if not locustfile.is_file():
            raise InputError(f"input locustfile: {locustfile} does not exist; the path is relative to the repository")
        updates |= {"locustfile": str(locustfile), "endpoints": None}
    return config.model_copy(update=updates)


def with_inputs(config: Config, inputs: ActionInputs) -> Config:
    """The workflow's say over the comparison: ``fail_on`` and ``baseline_url`` (duet mode)."""
    if inputs.fail_on is not None:  # already checked when the inputs were read
        config = with_comparison(config, fail_on=list(inputs.fail_on))
    if inputs.baseline_url:
        try:
            config = with_comparison(config, baseline_target=inputs.baseline_url)
        except ValueError as exc:
            raise InputError(f"input baseline_url: {exc}") from exc
    return config


def _gateway(context: ActionContext, decision: Decision, environ: Mapping[str, str]) -> GitHubGateway | None:
    token, repository = context.inputs.github_token, context.repository
    if not (token and repository):
        if decision.activity != "local":
            missing = "input github_token" if not token else "GITHUB_REPOSITORY"
            raise InputError(f"{decision.activity} needs {missing}; run inside GitHub Actions with the default token")
        return None
    return GitHubGateway(
        token=token, api_url=context.api_url, repository=repository, settings=GatewaySettings.from_environ(environ)
    )


def _data_branch(gateway: GitHubGateway, inputs: ActionInputs) -> DataBranchStore:
    """The baseline store on GitHub: the inputs' data branch, retention and suite folder."""
    return DataBranchStore(gateway, branch=inputs.data_branch, keep=inputs.keep_runs, suite=inputs.id)


@contextmanager
def _closing(gateway: GitHubGateway | None) -> Iterator[None]:
    try:
        yield
    finally:
        if gateway is not None:
            gateway.close()


# -- judging -----------------------------------------------------------------------------------


def _run(
    context: ActionContext,
    decision: Decision,
    config: Config,
    gateway: GitHubGateway | None,
    *,
    environ: Mapping[str, str],
    out: WorkflowLog,
    progress: ProgressLine | None,
) -> Judged:
    inputs = context.inputs
    change = context.change if decision.activity == "check-pr" else None
    store: BaselineStore = _data_branch(gateway, inputs) if gateway else LocalStore(Path(config.store.path))
    if change is not None:
        assert gateway is not None
        subject = change_subject(context, config, change, gateway=gateway, store=store, out=out)
    else:  # the baseline branch defaults to the repository's default branch
        subject = Subject(against(config, context.default_branch), context.sha, context.branch)
    # a change's run belongs to its head, not to the test merge commit
    child_environ = {**environ, "GITHUB_SHA": change.head_sha} if change else dict(environ)
    config = with_inputs(subject.config, inputs)
    if config.gate.comparison.baseline_target:
        out.info(f"duet mode: every request also goes to {config.gate.comparison.baseline_target}")
    out_dir = context.resolve(inputs.out_dir)
    with out.group("ci-perf: load test"), out.untrusted(), _loopback_explained():
        outcome = run_pipeline(
            config,
            out_dir=out_dir,
            target=inputs.target_url,
            record=decision.activity == "record-baseline",
            branch=subject.branch,
            extra_args=inputs.extra_args,
            environ=child_environ,
            cwd=context.workspace,
            progress=progress,
            echo=out.stream,
            store=store,
            prefer_sha=subject.prefer_sha,
            gate_changes=subject.changes,
            run_url=context.run_url,
            suite=inputs.id or None,
            unmatched=subject.unmatched,
        )
    if outcome.recorded_at:
        out.info(f"recorded as a baseline run: {outcome.recorded_at}")
    elif decision.activity == "record-baseline":
        out.warning("the run was unreliable and was not recorded as a baseline")
    return Judged(
        judgement=outcome.judgement,
        markdown=outcome.markdown,
        out_dir=out_dir,
        head_sha=subject.head_sha,
        pull=change.number if change else None,
    )


def _judge_artifact(context: ActionContext, config: Config, gateway: GitHubGateway, out: WorkflowLog) -> Judged:
    """Report mode: judge the result an unprivileged run uploaded. Only JSON is read from it, never code."""
    run = context.event.get("workflow_run")
    if not isinstance(run, dict) or not run.get("head_sha"):
        raise InputError("mode: report needs a workflow_run event (the run whose artifact is reported)")
    head_sha = str(run["head_sha"])
    out_dir = context.resolve(context.inputs.out_dir)
    result = _read_artifact(out_dir / "result.json")
    if result.meta.git_sha and result.meta.git_sha != head_sha:
        out.warning(f"the artifact's result is of commit {result.meta.git_sha[:12]}, the run's head is {head_sha[:12]}")
    listed = [p for p in run.get("pull_requests") or [] if isinstance(p, dict) and p.get("number")]
    pull = gateway.pull(int(listed[0]["number"])) if listed else gateway.open_pull_with_head(head_sha)
    if pull is None:
        raise InputError(f"no open pull request has head {head_sha[:12]}; nothing to report on")
    config = with_inputs(against(config, pull.base_ref), context.inputs)
    store = _data_branch(gateway, context.inputs)
    prefer_sha = None if result.base is not None else gateway.merge_base(pull.base_sha, head_sha)
    history = baseline_history(store, result, config.gate.comparison, prefer_sha=prefer_sha)
    reruns = read_reruns(out_dir, result, limit=config.gate.comparison.confirm_runs, read=_read_artifact)
    run_url = run.get("html_url") if isinstance(run.get("html_url"), str) else context.run_url
    with out.untrusted():  # the artifact's text (endpoint names, messages) reaches the log's report
        judgement, markdown = conclude(
            config.gate,
            result,
            history=history,
            out_dir=out_dir,
            echo=out.stream,
            run_url=run_url,
            advisory=ADVISORY,
            suite=context.inputs.id or None,
            reruns=reruns,
        )
    return Judged(judgement=judgement, markdown=markdown, out_dir=out_dir, head_sha=head_sha, pull=pull.number)


ADVISORY = (
    "advisory: the numbers come from the pull request's own, unprivileged run (a fork's code chose them); "
    "the budget and the baseline are the base branch's. A result that cannot be judged does not pass the check."
)


def _read_artifact(path: Path) -> RunResult:
    if not path.is_file() or path.is_symlink():
        raise InputError(f"{path}: no result.json in the artifact; upload the out_dir of the pull request's run")
    size = path.stat().st_size
    if size > MAX_ARTIFACT_BYTES:
        raise InputError(f"{path}: {size:,} bytes is more than a ci-perf result can be ({MAX_ARTIFACT_BYTES:,})")
    return parse_result(path.read_text(encoding="utf-8", errors="replace"), source=str(path))


# -- publishing --------------------------------------------------------------------------------


def _publish(
    context: ActionContext, decision: Decision, judged: Judged, gateway: GitHubGateway | None, out: WorkflowLog
) -> int:
    report, markdown, out_dir = judged.judgement.report, judged.markdown, judged.out_dir
    (out_dir / "junit.xml").write_text(render_junit(report), encoding="utf-8")
    comment, check = CommentOutcome("skipped"), CheckOutcome("summary-only")
    failures: list[GitHubError] = []
    if gateway is not None and judged.pull is not None:
        try:
            comment = upsert_comment(
                gateway, number=judged.pull, markdown=markdown, report=report, policy=context.inputs.comment
            )
        except GitHubError as exc:
            failures.append(exc)
    # a token that may not comment may not create checks either (a fork's): the report workflow posts both
    if gateway is not None and judged.head_sha and decision.activity != "local" and comment.action != "denied":
        try:
            check = publish_check(
                gateway, head_sha=judged.head_sha, report=report, markdown=markdown, details_url=context.run_url
            )
        except GitHubError as exc:
            failures.append(exc)
    for failure in failures:
        out.error(f"publishing to GitHub failed; the report is in {out_dir} and the job summary: {failure}")
    comment_file_written = comment.action == "denied"
    if comment_file_written:
        path = out_dir / "comment.md"
        path.write_text(markdown, encoding="utf-8")
        out.warning(f"{comment.reason}")
        out.info(FORK_RECIPE.format(path=path, out_dir=context.inputs.out_dir))
    elif comment.action in {"created", "updated"}:
        out.info(f"comment {comment.action}: {comment.url}")
    elif comment.reason:
        out.info(f"no comment: {comment.reason}")
    for warning in check.warnings:
        out.warning(warning)
    append_summary(context.summary_path, markdown)
    write_outputs(
        context.output_path,
        {
            "verdict": report.verdict,
            "regressions": str(len(report.regressions)),
            "budget_violations": str(len(report.budget.violations)),
            "result_path": context.for_later_steps(out_dir / "result.json"),
            "report_path": context.for_later_steps(out_dir / "report.md"),
            "comment_url": comment.url or "",
            "comment_file_written": "true" if comment_file_written else "false",
        },
    )
    if report.status == "fail":
        out.error(f"ci-perf {one_line(report.headline, 400)}")  # it names endpoints: the run's text
    return judged.judgement.exit_code_after_publishing(failed=bool(failures))


LOOPBACK_HINT = (
    "; as the Docker action, {host} is the action's own container: a Docker action runs in a network of its "
    "own, so a service started on the runner (docker compose up, npm start &) is not at localhost there. "
    "Target it as the job sees it instead: a service container of the job (services: → "
    "http://<service name>:<port>), or a port "
    "docker compose publishes on the runner through the Docker host's gateway (http://172.17.0.1:<port>); "
    'or run ci-perf on the runner itself (README, "Reaching the service")'
)


@contextmanager
def _loopback_explained() -> Iterator[None]:
    """A loopback target that never became ready: say why that is likely in a Docker action, and the fixes."""
    try:
        yield
    except NotReady as exc:
        if not is_loopback(exc.url):
            raise
        host = urlsplit(exc.url).hostname
        raise NotReady(str(exc) + LOOPBACK_HINT.format(host=host), url=exc.url) from exc


def _could_not_run(summary: Path | None, output: Path | None, error: CiPerfError, *, suite: str = "") -> None:
    """The run never happened (bad input, GitHub or the service unreachable): the job summary and the
    ``verdict`` output say so, as they say a verdict when there is one."""
    what = "the config is invalid" if isinstance(error, ConfigError) else "could not run"
    name = check_name(suite or None)
    lines = "\n".join(f"- {escape_markdown(line, 500)}" for line in str(error).splitlines())
    append_summary(summary, f"### ❌ {name}: {what}\n\n{lines}\n")
    write_outputs(output, {"verdict": "error", "regressions": "0", "budget_violations": "0"})
