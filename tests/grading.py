"""Helpers that make every exercise's checks provably able to fail."""
from __future__ import annotations

from typing import Callable, Iterable

import pytest


def failing_checks(checks: Iterable[Callable], implementation) -> list[str]:
    """Names of the checks that reject `implementation` (an assertion or any error counts as a rejection)."""
    failed = []
    for check in checks:
        try:
            check(implementation)
        # an assertion, a pytest.raises that did not see its error, or the code crashing: all reject it
        except (Exception, pytest.fail.Exception):
            failed.append(check.__name__)
    return failed
