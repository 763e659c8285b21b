"""What a mutant is: one small edit of one file, the tests that should catch it, and (for a
mutant that no test can catch) the one-line argument why it is equivalent.

A catalogue file (``catalogue_*.py``) lists mutants with ``edits``::

    MUTANTS = edits("kernels/conv1d/reference.py", "reference", TESTS, [
        ("t * S + k * d - pl", "t * S + k * d + pl"),        # padding on the wrong side
        ("gy.sum(axis=(0, 2))", "gy.sum(axis=(0, 1))", 0),    # nth occurrence: 0
    ])

``old`` must occur exactly once in the file unless an occurrence index is given, so a
catalogue that no longer matches the code fails loudly instead of mutating the wrong place.
"""

from __future__ import annotations

from dataclasses import dataclass, field

__all__ = ["GROUPS", "Mutant", "edits", "CatalogueError"]

#: File groups of the report, in its order.
GROUPS = ("reference", "numba", "cuda_host", "engine", "optim", "metrics", "data")


class CatalogueError(ValueError):
    """A catalogue entry that does not fit the code it names."""


@dataclass(frozen=True)
class Mutant:
    file: str                     # path from the repository root
    group: str                    # one of GROUPS
    old: str                      # the text replaced ...
    new: str                      # ... by this
    tests: tuple[str, ...]        # pytest arguments: files, node ids, "-k", expressions
    nth: int | None = None        # which occurrence of ``old`` (None: it must be unique)
    equivalent: str | None = None  # why no test can tell it from the original
    note: str = field(default="", compare=False)

    def apply(self, text: str) -> tuple[str, int]:
        """The mutated text and the 1-based line of the edit."""
        starts = []
        i = text.find(self.old)
        while i >= 0:
            starts.append(i)
            i = text.find(self.old, i + 1)
        if not starts:
            raise CatalogueError(f"{self.file}: {self.old!r} not found")
        if self.nth is None and len(starts) != 1:
            raise CatalogueError(f"{self.file}: {self.old!r} occurs {len(starts)} times; "
                                 f"give its occurrence index")
        k = 0 if self.nth is None else self.nth
        if k >= len(starts):
            raise CatalogueError(f"{self.file}: {self.old!r} has no occurrence {k}")
        at = starts[k]
        return text[:at] + self.new + text[at + len(self.old):], text.count("\n", 0, at) + 1

    @property
    def label(self) -> str:
        nth = "" if self.nth is None else f"#{self.nth}"
        return f"{self.old!r}{nth} -> {self.new!r}"


def edits(file: str, group: str, tests, changes) -> list[Mutant]:
    """Mutants of one file that share a test selection. ``changes``: tuples
    ``(old, new)``, ``(old, new, nth)`` or ``(old, new, nth, equivalent_reason)``."""
    if group not in GROUPS:
        raise CatalogueError(f"{file}: unknown group {group!r}; known: {', '.join(GROUPS)}")
    tests = (tests,) if isinstance(tests, str) else tuple(tests)
    out = []
    for change in changes:
        old, new, *rest = change
        nth = rest[0] if rest else None
        equivalent = rest[1] if len(rest) > 1 else None
        if old == new:
            raise CatalogueError(f"{file}: mutant {old!r} changes nothing")
        out.append(Mutant(file, group, old, new, tests, nth, equivalent))
    return out
