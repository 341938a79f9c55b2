"""Reads the workbook's and the alert's KQL: which table each part reads, and every `Column op literal` in it."""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from pathlib import Path

TABLES_FILE = Path(__file__).resolve().parents[1] / "data" / "log_tables.json"

_TOKEN = re.compile(r"""
    (?P<ws>\s+|//[^\n]*)
  | (?P<str>@?"(?:[^"\\\n]|\\.)*"|@?'(?:[^'\\\n]|\\.)*')
  | (?P<num>\d+(?:\.\d+)?(?:[a-z]+\b)?)
  | (?P<id>[A-Za-z_][A-Za-z0-9_]*)
  | (?P<op>==|!=|=~|!~|<=|>=|[()\[\],;|=<>{}.:!+*/-])
""", re.X)
# Operators whose right-hand side is a literal the column must match.
EQUALITY = {"==", "!=", "<", ">", "<=", ">="}
STRING_OPS = {"=~", "!~", "has", "!has", "contains", "!contains", "startswith", "!startswith", "endswith",
              "!endswith", "has_cs", "startswith_cs", "endswith_cs", "contains_cs", "matches"}
LIST_OPS = {"in", "!in", "in~", "!in~", "has_any", "has_all"}
# A literal's KQL type, and the column types it may be compared with.
COMPATIBLE = {"string": {"string"}, "long": {"int", "long", "real"}, "real": {"int", "long", "real"},
              "bool": {"bool"}, "timespan": {"timespan"}}


@dataclass(frozen=True)
class Token:
    kind: str
    text: str
    table: str | None  # the table the innermost enclosing pipeline reads


@dataclass(frozen=True)
class Comparison:
    table: str
    column: str
    op: str
    literals: tuple[tuple[str, str], ...]  # (literal type, text)


@dataclass
class Query:
    name: str
    text: str
    tokens: list[Token] = field(default_factory=list)

    def tables(self) -> set[str]:
        return {t.table for t in self.tokens if t.table}

    def columns(self) -> set[tuple[str, str]]:
        """(table, identifier) for every capitalised identifier read inside a table's pipeline: table columns
        (the queries' own columns are lower case by convention)."""
        known = load_tables()
        toks = self.tokens
        return {(t.table, t.text) for i, t in enumerate(toks)
                if t.kind == "id" and t.table and t.text[0].isupper() and t.text not in known
                and not (i and toks[i - 1].text == ".")}  # `parse_url(Uri).Path`: a property, not a column

    def comparisons(self) -> list[Comparison]:
        out = []
        toks = self.tokens
        for i, tok in enumerate(toks[:-1]):
            if tok.kind != "id" or not tok.table or (i and toks[i - 1].text == "."):
                continue
            op, j = _operator(toks, i + 1)
            if op is None:
                continue
            if op in LIST_OPS:
                if j >= len(toks) or toks[j].text != "(":
                    continue
                lits, k = [], j + 1
                while k < len(toks) and toks[k].text != ")":
                    if toks[k].text != ",":
                        lits.append(_literal(toks[k]))
                    k += 1
                if all(lits):
                    out.append(Comparison(tok.table, tok.text, op, tuple(lits)))  # type: ignore[arg-type]
            elif j < len(toks) and (lit := _literal(toks[j])):
                out.append(Comparison(tok.table, tok.text, op, (lit,)))
        return out


def _operator(toks: list[Token], j: int) -> tuple[str | None, int]:
    if j >= len(toks):
        return None, j
    text = toks[j].text
    if text == "!" and j + 1 < len(toks) and toks[j + 1].kind == "id":  # !in, !has, !startswith, ...
        text, j = "!" + toks[j + 1].text, j + 1
    if text in ("in", "!in") and j + 1 < len(toks) and toks[j + 1].text == "~":
        text, j = text + "~", j + 1
    if text in EQUALITY | STRING_OPS | LIST_OPS:
        return text, j + 1
    return None, j


def _literal(tok: Token) -> tuple[str, str] | None:
    if tok.kind == "str":
        return "string", tok.text
    if tok.kind == "num":
        if tok.text[-1].isalpha():
            return "timespan", tok.text  # 5m, 1s, 1d
        return ("real" if "." in tok.text else "long"), tok.text
    if tok.kind == "id" and tok.text in ("true", "false"):
        return "bool", tok.text
    return None


def load_tables() -> dict[str, dict[str, object]]:
    return json.loads(TABLES_FILE.read_text())["tables"]


def parse(name: str, text: str) -> Query:
    """Tokens, each tagged with the table of the pipeline it belongs to (parentheses open a new pipeline;
    `let x = T ...;` makes `x` stand for T)."""
    tables = set(load_tables())
    lets: dict[str, str | None] = {}
    stack: list[str | None] = [None]
    query = Query(name, text)
    pending_let: list[str] = []
    pos = 0
    while pos < len(text):
        m = _TOKEN.match(text, pos)
        if m is None:
            raise ValueError(f"{name}: cannot read KQL at {text[pos:pos + 30]!r}")
        pos = m.end()
        kind = m.lastgroup or ""
        word = m.group()
        if kind == "ws":
            continue
        if kind == "id" and word == "let":
            pending_let.append("")
        elif kind == "id" and pending_let and pending_let[-1] == "":
            pending_let[-1] = word
        elif kind == "id" and (word in tables or word in lets):
            stack[-1] = word if word in tables else lets[word]
        if word == "(":
            stack.append(None)
        query.tokens.append(Token(kind, word, next((t for t in reversed(stack) if t), None)))
        if word == ")" and len(stack) > 1:
            stack.pop()
        elif word == ";":
            if pending_let:
                lets[pending_let.pop()] = stack[-1]
            stack[-1] = None
    return query


def type_errors(query: Query) -> list[str]:
    """Every comparison of a documented column with a literal of another type, and every column the data file
    does not document (its type would be unchecked)."""
    tables = load_tables()
    errors = [f"{query.name}: reads {t.text}, a table not in {TABLES_FILE.name} (add its columns and types)"
              for t in query.tokens if t.kind == "id" and t.table is None and t.text[0].isupper()]
    for table, column in sorted(query.columns()):
        if column not in tables[table]["columns"]:  # type: ignore[operator]
            errors.append(f"{query.name}: {table}.{column} is not in {TABLES_FILE.name}: look up its type in "
                          f"{tables[table]['doc']}")
    for c in query.comparisons():
        ctype = tables[c.table]["columns"].get(c.column)  # type: ignore[attr-defined]
        if ctype is None:
            continue  # reported above, or a lower-case column of the query's own
        if c.op in STRING_OPS and ctype != "string":
            errors.append(f"{query.name}: {c.table}.{c.column} is {ctype}: `{c.op}` is a string operator")
        for ltype, text in c.literals:
            if ctype not in COMPATIBLE[ltype] and c.op not in STRING_OPS:
                errors.append(f"{query.name}: {c.table}.{c.column} is {ctype}, compared ({c.op}) with the {ltype} "
                              f"{text}")
    return errors
