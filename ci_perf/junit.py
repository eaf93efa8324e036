"""``junit.xml``: the gate as test cases, so GitLab, Jenkins and other CI systems can show it.

One test case per budget rule (failure when violated, skipped without data) and one per
regression check (endpoint × metric: failure for a regression, skipped when inconclusive
or without a baseline). Endpoint names are untrusted (an artifact's, in report mode): ``xml.etree``
escapes markup, and ``formatting.one_line`` drops what XML 1.0 cannot hold at all (control
characters, lone surrogates) and what a CI log would run as a workflow command.
"""

from __future__ import annotations

import xml.etree.ElementTree as ET

from ci_perf.analysis.compare import METRICS
from ci_perf.analysis.judge import Report, describe_change
from ci_perf.formatting import format_value, one_line
from ci_perf.results import MEASURES

_SKIPPED = {"inconclusive", "no-baseline"}
NAME_LIMIT = 300  # characters of an endpoint name in a test case's name or message


def render_junit(report: Report) -> str:
    suites = ET.Element("testsuites", name="ci-perf")
    budget = ET.SubElement(suites, "testsuite", name="ci-perf budget")
    for check in report.budget.checks:
        case = ET.SubElement(
            budget,
            "testcase",
            classname="ci-perf.budget",
            name=f"{one_line(check.endpoint, NAME_LIMIT)} {check.label} ({check.source})",
        )
        relation = "≤" if check.upper_bound else "≥"
        measured = format_value(check.measured, check.unit)
        detail = f"{check.label} {measured}, limit {relation} {format_value(check.limit, check.unit)}"
        if check.status == "fail":
            ET.SubElement(case, "failure", message=detail, type="budget")
        elif check.status == "no-data":
            ET.SubElement(case, "skipped", message=f"no data: {detail}")
    regressions = ET.SubElement(suites, "testsuite", name="ci-perf regressions")
    for endpoint in report.comparison.endpoints if report.comparison else []:
        for metric in endpoint.metrics.values():
            if metric.verdict == "not-judged":
                continue
            label = MEASURES[METRICS[metric.metric]][0]
            case = ET.SubElement(
                regressions,
                "testcase",
                classname="ci-perf.regression",
                name=f"{one_line(endpoint.endpoint, NAME_LIMIT)} {label}",
            )
            if metric.verdict == "regression":
                message = describe_change(one_line(endpoint.endpoint, NAME_LIMIT), metric)
                ET.SubElement(case, "failure", message=message, type="regression")
            elif metric.verdict in _SKIPPED:
                ET.SubElement(case, "skipped", message=one_line(metric.note or metric.verdict, NAME_LIMIT))
    for suite in (budget, regressions):
        cases = list(suite)
        suite.set("tests", str(len(cases)))
        suite.set("failures", str(sum(1 for c in cases if c.find("failure") is not None)))
        suite.set("skipped", str(sum(1 for c in cases if c.find("skipped") is not None)))
    ET.indent(suites)
    return ET.tostring(suites, encoding="unicode", xml_declaration=True) + "\n"
