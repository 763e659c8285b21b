"""How big the code is, against the size budgets of the house style: the core (tensor.py,
function.py, backend.py and the backward walk, autograd.py) under ~450 lines of code, every
module of minimtl/ under ~450 lines, every kernel file under ~300.

Two counts per file: ``lines`` (every line) and ``code`` (lines with a Python token that is
not a comment and not part of a docstring; a CUDA C source string counts as code, its //
comments included). The core's budget is in code lines: its docstrings are the engine's
documentation, and a budget that counted them would pay for brevity with explanations.

    python benchmarks/code_size.py            # the core, then the largest files
"""

from __future__ import annotations

import argparse
import ast
import io
import tokenize
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
CORE = ("minimtl/tensor.py", "minimtl/function.py", "minimtl/backend.py", "minimtl/autograd.py")
_SKIP = {tokenize.COMMENT, tokenize.NL, tokenize.NEWLINE, tokenize.INDENT, tokenize.DEDENT,
         tokenize.ENDMARKER}


def count(path: Path) -> tuple[int, int]:
    """(lines, code lines) of one Python file."""
    src = path.read_text()
    docs: set[int] = set()
    for node in ast.walk(ast.parse(src)):
        if isinstance(node, (ast.Module, ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef)):
            first = node.body[0] if node.body else None
            if (isinstance(first, ast.Expr) and isinstance(first.value, ast.Constant)
                    and isinstance(first.value.value, str)):
                docs.update(range(first.lineno, first.end_lineno + 1))
    code: set[int] = set()
    for tok in tokenize.generate_tokens(io.StringIO(src).readline):
        if tok.type not in _SKIP:
            code.update(range(tok.start[0], tok.end[0] + 1))
    return len(src.splitlines()), len(code - docs)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--top", type=int, default=8, help="largest files listed per folder")
    args = ap.parse_args(argv)
    rows = [(p, *count(ROOT / p)) for p in CORE]
    print(f"{'core':<44} {'lines':>6} {'code':>6}")
    for p, n, c in rows:
        print(f"{p:<44} {n:6d} {c:6d}")
    print(f"{'total (budget: ~450 code lines)':<44} {sum(r[1] for r in rows):6d} "
          f"{sum(r[2] for r in rows):6d}")
    for folder, budget in (("minimtl", 450), ("kernels", 300)):
        files = [(str(p.relative_to(ROOT)), *count(p)) for p in (ROOT / folder).rglob("*.py")]
        files.sort(key=lambda r: -r[1])
        print(f"\n{folder + '/ largest (budget: ~' + str(budget) + ' lines)':<44} "
              f"{'lines':>6} {'code':>6}")
        for p, n, c in files[:args.top]:
            print(f"{p:<44} {n:6d} {c:6d}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
