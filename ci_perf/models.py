"""The two pydantic bases every ci-perf model derives from.

``Frozen``: an immutable value (analysis results, reports, context). ``Strict``: frozen and
``extra="forbid"``, for what is read from outside (``ci-perf.yml``, ``result.json``): a typo or
a foreign field is an error, not silently ignored data.
"""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict


class Frozen(BaseModel):
    model_config = ConfigDict(frozen=True)


class Strict(Frozen):
    model_config = ConfigDict(frozen=True, extra="forbid")
