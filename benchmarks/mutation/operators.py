"""The mutation operators, as one AST walk that lists mutants and a text splice that applies one.

A mutant is a span of the original file and the text that replaces it, so everything outside the span
keeps its bytes and its line numbers. The operators are the classic small faults: a comparison
negated or moved across its boundary, ``and``/``or`` swapped, a ``not`` dropped or a test negated, a
constant changed, ``+``/``-`` swapped, a statement removed, a return value replaced by ``None``, and
two adjacent positional arguments swapped.

Some nodes are never mutated, because every mutant there would be equivalent by construction:
docstrings, annotations, imports, the parts of f-strings, and the human-readable message of a refusal
or an exception (docs/spec.md R10.1 leaves the wording free; R10.9 only forbids secrets in it). A
plain assignment is removed only when it rebinds a name, since removing a first binding is a
``NameError`` that any run kills without saying anything about the suite.
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from dataclasses import dataclass

# Calls whose listed positional arguments (or keywords) are message text, not protocol values.
MESSAGE_ARGS: dict[str, tuple[int, ...]] = {
    "Refusal": (2,),
    "LockRefused": (0,),
    "ErrorBody": (1,),
    "_plaintext_message": (0, 1),
    "RuntimeError": (0,),
    "AssertionError": (0,),
    "ValueError": (0,),
    "TypeError": (0,),
}
MESSAGE_KEYWORDS = frozenset({"message", "reason"})
# ProtocolError and its subclasses take the reason first: any call to a name ending so is one.
EXCEPTION_SUFFIXES = ("Error", "Mismatch", "Point", "Secret", "Reuse", "Failed", "HighS", "Field", "Type", "Range")

NEGATED: dict[type[ast.cmpop], type[ast.cmpop]] = {
    ast.Eq: ast.NotEq,
    ast.NotEq: ast.Eq,
    ast.Lt: ast.GtE,
    ast.GtE: ast.Lt,
    ast.Gt: ast.LtE,
    ast.LtE: ast.Gt,
    ast.In: ast.NotIn,
    ast.NotIn: ast.In,
    ast.Is: ast.IsNot,
    ast.IsNot: ast.Is,
}
BOUNDARY: dict[type[ast.cmpop], type[ast.cmpop]] = {ast.Lt: ast.LtE, ast.LtE: ast.Lt, ast.Gt: ast.GtE, ast.GtE: ast.Gt}
SYMBOLS: dict[type[ast.AST], str] = {
    ast.Eq: "==",
    ast.NotEq: "!=",
    ast.Lt: "<",
    ast.LtE: "<=",
    ast.Gt: ">",
    ast.GtE: ">=",
    ast.In: "in",
    ast.NotIn: "not in",
    ast.Is: "is",
    ast.IsNot: "is not",
    ast.And: "and",
    ast.Or: "or",
    ast.Add: "+",
    ast.Sub: "-",
}


@dataclass(frozen=True)
class Mutant:
    """One mutation of one file: replace the span from (line, col) to (end_line, end_col) with ``text``.

    Columns are UTF-8 byte offsets, as the AST gives them.
    """

    file: str
    qualname: str
    line: int
    col: int
    end_line: int
    end_col: int
    text: str
    operator: str
    description: str
    statement_line: int  # the first line of the enclosing statement: what coverage reports as run

    @property
    def key(self) -> str:
        return f"{self.file}:{self.line}:{self.col}:{self.operator}:{self.description}"


def _short(text: str, limit: int = 60) -> str:
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _call_name(call: ast.Call) -> str:
    func = call.func
    if isinstance(func, ast.Name):
        return func.id
    if isinstance(func, ast.Attribute):
        return func.attr
    return ""


def _message_nodes(call: ast.Call) -> set[int]:
    """ids of the argument nodes of ``call`` that are message text."""
    name = _call_name(call)
    positions = MESSAGE_ARGS.get(name)
    if positions is None and name.endswith(EXCEPTION_SUFFIXES) and name[:1].isupper():
        positions = (0,)
    found = {id(call.args[i]) for i in positions or () if i < len(call.args)}
    if positions is not None:
        found |= {id(k.value) for k in call.keywords if k.arg in MESSAGE_KEYWORDS}
    return found


class _Lister(ast.NodeVisitor):
    def __init__(self, file: str, source: bytes, scope: tuple[str, ...] | None) -> None:
        self.file = file
        self.lines = source.splitlines(keepends=True)
        self.scope = scope  # None: the whole file; else qualnames (and their nested functions)
        self.stack: list[str] = []
        self.bound: list[set[str]] = [set()]  # names bound so far, per function
        self.skip: set[int] = set()
        self.mutants: list[Mutant] = []
        self.statement_line = 0

    # --- helpers ------------------------------------------------------------------------------------

    @property
    def qualname(self) -> str:
        return ".".join(self.stack) or "<module>"

    def in_scope(self) -> bool:
        if self.scope is None:
            return True
        q = self.qualname
        return any(q == s or q.startswith(s + ".") for s in self.scope)

    def segment(self, node: ast.AST) -> str:
        first, last = node.lineno - 1, node.end_lineno or node.lineno  # type: ignore[attr-defined]
        chunk = b"".join(self.lines[first:last])
        start = node.col_offset  # type: ignore[attr-defined]
        end = len(chunk) - len(self.lines[last - 1]) + node.end_col_offset  # type: ignore[attr-defined]
        return chunk[start:end].decode("utf-8")

    def add(self, node: ast.AST, text: str, operator: str, description: str, *, expression: bool = True) -> None:
        if not self.in_scope():
            return
        self.mutants.append(
            Mutant(
                self.file,
                self.qualname,
                node.lineno,  # type: ignore[attr-defined]
                node.col_offset,  # type: ignore[attr-defined]
                node.end_lineno or node.lineno,  # type: ignore[attr-defined]
                node.end_col_offset or 0,  # type: ignore[attr-defined]
                f"({text})" if expression else text,
                operator,
                description,
                self.statement_line or node.lineno,  # type: ignore[attr-defined]
            )
        )

    def skip_tree(self, node: ast.AST | None) -> None:
        if node is not None:
            self.skip.update(id(n) for n in ast.walk(node))

    # --- structure ------------------------------------------------------------------------------------

    def visit_Import(self, node: ast.Import) -> None:
        return

    def visit_ImportFrom(self, node: ast.ImportFrom) -> None:
        return

    def _body_docstring(self, body: list[ast.stmt]) -> None:
        if body and isinstance(body[0], ast.Expr) and isinstance(body[0].value, ast.Constant):
            self.skip_tree(body[0])

    def visit_Module(self, node: ast.Module) -> None:
        self._body_docstring(node.body)
        self.generic_visit(node)

    def visit_ClassDef(self, node: ast.ClassDef) -> None:
        self._body_docstring(node.body)
        for stmt in node.body:
            if isinstance(stmt, ast.AnnAssign):
                self.skip_tree(stmt.annotation)
        self.stack.append(node.name)
        self.generic_visit(node)
        self.stack.pop()

    def _function(self, node: ast.FunctionDef | ast.AsyncFunctionDef) -> None:
        self._body_docstring(node.body)
        self.skip_tree(node.returns)
        args = node.args
        params = [*args.posonlyargs, *args.args, *args.kwonlyargs, args.vararg, args.kwarg]
        for a in params:
            if a is not None:
                self.skip_tree(a.annotation)
        for decorator in node.decorator_list:
            self.visit(decorator)
        for default in [*args.defaults, *(d for d in args.kw_defaults if d is not None)]:
            self.visit(default)
        self.stack.append(node.name)
        self.bound.append({a.arg for a in params if a is not None})
        for stmt in node.body:
            self.visit(stmt)
        self.bound.pop()
        self.stack.pop()
        self.bound[-1].add(node.name)

    def visit_FunctionDef(self, node: ast.FunctionDef) -> None:
        self._function(node)

    def visit_AsyncFunctionDef(self, node: ast.AsyncFunctionDef) -> None:
        self._function(node)

    def visit_JoinedStr(self, node: ast.JoinedStr) -> None:
        return  # positions inside f-strings are not reliable before 3.12, and they are message text

    def visit_Call(self, node: ast.Call) -> None:
        self.skip.update(_message_nodes(node))
        positional = node.args
        if not any(isinstance(a, ast.Starred) for a in positional):
            for i in range(len(positional) - 1):
                a, b = positional[i], positional[i + 1]
                if ast.dump(a) != ast.dump(b) and id(a) not in self.skip and id(b) not in self.skip:
                    swapped = ast.Call(node.func, [*positional[:i], b, a, *positional[i + 2 :]], node.keywords)
                    self.add(
                        node,
                        ast.unparse(swapped),
                        "swap-args",
                        f"`{_short(self.segment(a), 25)}` ⇄ `{_short(self.segment(b), 25)}` in `{_call_name(node)}(…)`",
                    )
        self.generic_visit(node)

    # --- statements -------------------------------------------------------------------------------------

    def _remove(self, node: ast.stmt, what: str) -> None:
        if self.stack:  # statements run at import are not the node's behaviour (and crash it if removed)
            self.add(
                node, "pass", "remove-statement", f"removed `{_short(self.segment(node))}`{what}", expression=False
            )

    def visit_Expr(self, node: ast.Expr) -> None:
        if id(node) in self.skip:
            return
        if isinstance(node.value, ast.Call | ast.Await):
            self._remove(node, "")
        self.generic_visit(node)

    def visit_Raise(self, node: ast.Raise) -> None:
        self._remove(node, "")
        self.generic_visit(node)

    def visit_AugAssign(self, node: ast.AugAssign) -> None:
        self._remove(node, "")
        self.generic_visit(node)

    def _targets_rebind(self, targets: list[ast.expr]) -> bool:
        names: list[str] = []
        for target in targets:
            for n in ast.walk(target):
                if isinstance(n, ast.Attribute | ast.Subscript):
                    return True
                if isinstance(n, ast.Name):
                    names.append(n.id)
        return bool(names) and all(name in self.bound[-1] for name in names)

    def _bind(self, targets: list[ast.expr]) -> None:
        for target in targets:
            self.bound[-1].update(n.id for n in ast.walk(target) if isinstance(n, ast.Name))

    def visit_Assign(self, node: ast.Assign) -> None:
        if len(self.bound) > 1 and self._targets_rebind(node.targets):
            self._remove(node, " (a rebinding)")
        self.visit(node.value)
        self._bind(node.targets)

    def visit_AnnAssign(self, node: ast.AnnAssign) -> None:
        self.skip_tree(node.annotation)
        if node.value is not None:
            if len(self.bound) > 1 and self._targets_rebind([node.target]):
                self._remove(node, " (a rebinding)")
            self.visit(node.value)
        self._bind([node.target])

    def visit_For(self, node: ast.For) -> None:
        self._bind([node.target])
        self.generic_visit(node)

    def visit_AsyncFor(self, node: ast.AsyncFor) -> None:
        self._bind([node.target])
        self.generic_visit(node)

    def visit_With(self, node: ast.With) -> None:
        self._bind([i.optional_vars for i in node.items if i.optional_vars is not None])
        self.generic_visit(node)

    def visit_ExceptHandler(self, node: ast.ExceptHandler) -> None:
        if node.name:
            self.bound[-1].add(node.name)
        self.generic_visit(node)

    def visit_Return(self, node: ast.Return) -> None:
        value = node.value
        if value is not None and not (isinstance(value, ast.Constant) and value.value is None):
            self.add(
                node, "return None", "return-none", f"`{_short(self.segment(node))}` → `return None`", expression=False
            )
        self.generic_visit(node)

    def _negate_test(self, test: ast.expr) -> None:
        if isinstance(test, ast.Compare) or (isinstance(test, ast.UnaryOp) and isinstance(test.op, ast.Not)):
            return  # the compare and not operators already make these mutants
        self.add(test, f"not ({self.segment(test)})", "negate-test", f"`{_short(self.segment(test))}` negated")

    def visit_If(self, node: ast.If) -> None:
        self._negate_test(node.test)
        self.generic_visit(node)

    def visit_While(self, node: ast.While) -> None:
        self._negate_test(node.test)
        self.generic_visit(node)

    def visit_IfExp(self, node: ast.IfExp) -> None:
        self._negate_test(node.test)
        self.generic_visit(node)

    # --- expressions ------------------------------------------------------------------------------------

    def visit_Compare(self, node: ast.Compare) -> None:
        for i, op in enumerate(node.ops):
            for table, operator in ((NEGATED, "compare"), (BOUNDARY, "boundary")):
                other = table.get(type(op))
                if other is None:
                    continue
                ops = [*node.ops[:i], other(), *node.ops[i + 1 :]]
                mutated = ast.Compare(node.left, ops, node.comparators)
                self.add(
                    node,
                    ast.unparse(mutated),
                    operator,
                    f"`{SYMBOLS[type(op)]}` → `{SYMBOLS[other]}` in `{_short(self.segment(node))}`",
                )
        self.generic_visit(node)

    def visit_BoolOp(self, node: ast.BoolOp) -> None:
        other: ast.boolop = ast.Or() if isinstance(node.op, ast.And) else ast.And()
        self.add(
            node,
            ast.unparse(ast.BoolOp(other, node.values)),
            "bool-op",
            f"`{SYMBOLS[type(node.op)]}` → `{SYMBOLS[type(other)]}` in `{_short(self.segment(node))}`",
        )
        self.generic_visit(node)

    def visit_UnaryOp(self, node: ast.UnaryOp) -> None:
        if isinstance(node.op, ast.Not):
            self.add(node, self.segment(node.operand), "not", f"`not` removed from `{_short(self.segment(node))}`")
        self.generic_visit(node)

    def visit_BinOp(self, node: ast.BinOp) -> None:
        textual = (ast.JoinedStr,)
        operands = (node.left, node.right)
        is_text = any(
            isinstance(o, textual) or (isinstance(o, ast.Constant) and isinstance(o.value, str | bytes))
            for o in operands
        )
        if isinstance(node.op, ast.Add | ast.Sub) and not is_text:
            other: ast.operator = ast.Sub() if isinstance(node.op, ast.Add) else ast.Add()
            self.add(
                node,
                ast.unparse(ast.BinOp(node.left, other, node.right)),
                "arith",
                f"`{SYMBOLS[type(node.op)]}` → `{SYMBOLS[type(other)]}` in `{_short(self.segment(node))}`",
            )
        self.generic_visit(node)

    def visit_Constant(self, node: ast.Constant) -> None:
        if id(node) in self.skip:
            return
        value = node.value
        new: object
        if isinstance(value, bool):
            new = not value
        elif isinstance(value, int):
            new = value + 1
        elif isinstance(value, str):
            new = f"XX{value}XX"
        elif isinstance(value, bytes):
            new = b"XX" + value + b"XX"
        else:
            return
        self.add(node, repr(new), "constant", f"`{_short(repr(value), 40)}` → `{_short(repr(new), 44)}`")

    def visit(self, node: ast.AST) -> None:
        if id(node) in self.skip:
            return
        if not isinstance(node, ast.stmt):
            super().visit(node)
            return
        outer, self.statement_line = self.statement_line, node.lineno
        try:
            super().visit(node)
        finally:
            self.statement_line = outer


def list_mutants(file: str, source: bytes, scope: tuple[str, ...] | None = None) -> list[Mutant]:
    """Every mutant of ``source`` (the text of ``file``), restricted to the ``scope`` qualnames if given."""
    lister = _Lister(file, source, scope)
    lister.visit(ast.parse(source))
    return [m for m in lister.mutants if _compiles(apply(source, m))]


def apply(source: bytes, mutant: Mutant) -> bytes:
    """The source with ``mutant``'s span replaced."""
    lines = source.splitlines(keepends=True)
    start = sum(len(x) for x in lines[: mutant.line - 1]) + mutant.col
    end = sum(len(x) for x in lines[: mutant.end_line - 1]) + mutant.end_col
    return source[:start] + mutant.text.encode("utf-8") + source[end:]


def _compiles(source: bytes) -> bool:
    try:
        compile(source, "<mutant>", "exec", dont_inherit=True)
    except SyntaxError:
        return False
    return True


def iter_scope(files: dict[str, tuple[str, ...] | None], read: dict[str, bytes]) -> Iterator[Mutant]:
    for file, scope in files.items():
        yield from list_mutants(file, read[file], scope)
