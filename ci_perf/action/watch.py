"""The action's watch mode (``mode: watch``, for ``schedule`` and ``workflow_dispatch``): the change points
in the data branch's runs on the baseline branch, in the job summary and the ``change_points`` output.

No load is run, nothing is written to the data branch, no comment or check is posted; the exit code is 0
(a change point is news about the baseline branch, not a verdict on a change).
"""

from __future__ import annotations

from ci_perf.action.subject import against
from ci_perf.config import Config
from ci_perf.errors import EXIT_PASS
from ci_perf.github.context import ActionContext
from ci_perf.github.workflow import WorkflowLog, append_summary, write_outputs
from ci_perf.watch import WatchedStore, watch_store, write_watch


def watch_data_branch(context: ActionContext, config: Config, store: WatchedStore, out: WorkflowLog) -> int:
    """List the change points of every scenario the store holds on the baseline branch (the config's, else
    the repository's default branch), as ``ci-perf watch`` does for a local store."""
    settings = against(config, context.default_branch).gate.comparison
    branch = settings.baseline_branch
    watched = watch_store(store, branch=branch, settings=settings)
    out_dir = context.resolve(context.inputs.out_dir)
    write_watch(watched, out_dir)
    report = watched.report
    out.info(f"{len(report.changes)} change point(s) in {report.runs} run(s) on {branch}")
    with out.untrusted():  # endpoint names come from the recorded runs
        for line in watched.lines:
            out.info(line)
    append_summary(context.summary_path, watched.markdown)
    write_outputs(
        context.output_path,
        {
            "change_points": str(len(report.changes)),
            "report_path": context.for_later_steps(out_dir / "watch.md"),
        },
    )
    return EXIT_PASS
