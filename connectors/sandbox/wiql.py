"""A WIQL parser: tokenizer and recursive descent, producing a small syntax tree.

The subset is what portfolio tools send to `POST _apis/wit/wiql` (flat queries):

    SELECT [f], [g] FROM WorkItems
    WHERE <expr> ORDER BY [f] ASC|DESC, ...

    expr      := and_expr (OR and_expr)*
    and_expr  := not_expr (AND not_expr)*
    not_expr  := NOT not_expr | '(' expr ')' | condition
    condition := field ( cmp value | [NOT] IN '(' value, ... ')' | [NOT] UNDER value
                       | [NOT] CONTAINS [WORDS] value | IS [NOT] EMPTY )
    value     := 'string' | "string" | number | @macro [(+|-) number]

Fields are `[Reference.Name]`, `[Display Name]` or a bare dotted name. Error messages copy the
service's wording ("Expecting comparison operator. The error is caused by «*».") so a user of
the sandbox sees what they would see against dev.azure.com. Meaning (which field, which type,
what a date means) is resolved later by `wiql_eval`.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Literal

KEYWORDS = frozenset(
    {"select", "from", "where", "order", "by", "asc", "desc", "and", "or", "not", "in"}
    | {"under", "contains", "words", "is", "empty", "asof", "ever"}
)


class WiqlError(ValueError):
    """A query the service would refuse (HTTP 400); the message is the service's wording."""


def caused_by(text: str) -> str:
    return f"The error is caused by «{text}»."


# -- tokens ------------------------------------------------------------------------------------
TokenKind = Literal["field", "string", "number", "macro", "word", "symbol", "end"]


@dataclass(frozen=True, slots=True)
class Token:
    kind: TokenKind
    text: str
    value: str | float

    def is_word(self, *words: str) -> bool:
        return self.kind == "word" and str(self.value) in words


_TOKEN = re.compile(
    r"""
    (?P<space>\s+)
  | (?P<field>\[[^\]]*\])
  | (?P<string>'(?:[^']|'')*'|"(?:[^"]|"")*")
  | (?P<number>\d+(?:\.\d+)?)
  | (?P<macro>@[A-Za-z_]\w*)
  | (?P<word>[A-Za-z_][\w.]*)
  | (?P<symbol><>|!=|>=|<=|[=<>(),*+-])
    """,
    re.VERBOSE,
)


def tokenize(text: str) -> list[Token]:
    tokens: list[Token] = []
    position = 0
    while position < len(text):
        match = _TOKEN.match(text, position)
        if match is None:
            raise WiqlError(f"Unexpected character. {caused_by(text[position])}")
        position = match.end()
        kind = match.lastgroup
        raw = match.group()
        if kind == "space":
            continue
        if kind == "field":
            tokens.append(Token("field", raw, raw[1:-1].strip()))
        elif kind == "string":
            quote = raw[0]
            tokens.append(Token("string", raw, raw[1:-1].replace(quote * 2, quote)))
        elif kind == "number":
            tokens.append(Token("number", raw, float(raw)))
        elif kind == "word":
            lowered = raw.lower()
            tokens.append(Token("word", raw, lowered if lowered in KEYWORDS else raw))
        elif kind == "macro":
            tokens.append(Token("macro", raw, raw.lower()))
        else:
            tokens.append(Token("symbol", raw, raw))
    tokens.append(Token("end", "", ""))
    return tokens


# -- syntax tree -------------------------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class FieldRef:
    name: str
    text: str


@dataclass(frozen=True, slots=True)
class Constant:
    value: str | float
    text: str


@dataclass(frozen=True, slots=True)
class Macro:
    name: str
    offset: float
    text: str


Value = Constant | Macro
Operator = Literal["=", "<>", ">", ">=", "<", "<=", "in", "under", "contains", "words", "empty"]
_COMPARISON_OPERATORS: dict[str, Operator] = {
    "=": "=",
    "<>": "<>",
    "!=": "<>",
    ">": ">",
    ">=": ">=",
    "<": "<",
    "<=": "<=",
}


@dataclass(frozen=True, slots=True)
class Condition:
    """`negated` turns IN / UNDER / CONTAINS / IS EMPTY into their NOT forms."""

    field: FieldRef
    operator: Operator
    values: tuple[Value, ...]
    negated: bool
    text: str


@dataclass(frozen=True, slots=True)
class And:
    items: tuple[Expr, ...]


@dataclass(frozen=True, slots=True)
class Or:
    items: tuple[Expr, ...]


@dataclass(frozen=True, slots=True)
class Not:
    item: Expr


Expr = Condition | And | Or | Not


@dataclass(frozen=True, slots=True)
class Query:
    columns: tuple[FieldRef, ...]
    source: str
    where: Expr | None
    order: tuple[tuple[FieldRef, bool], ...]


# -- parser ------------------------------------------------------------------------------------
class _Parser:
    def __init__(self, text: str) -> None:
        self.tokens = tokenize(text)
        self.position = 0

    @property
    def current(self) -> Token:
        return self.tokens[self.position]

    def advance(self) -> Token:
        token = self.tokens[self.position]
        if token.kind != "end":
            self.position += 1
        return token

    def accept_word(self, *words: str) -> Token | None:
        if self.current.is_word(*words):
            return self.advance()
        return None

    def expect_word(self, word: str, message: str) -> Token:
        token = self.accept_word(word)
        if token is None:
            raise WiqlError(f"{message} {caused_by(self.current.text)}")
        return token

    def accept_symbol(self, symbol: str) -> bool:
        if self.current.kind == "symbol" and self.current.value == symbol:
            self.advance()
            return True
        return False

    def query(self) -> Query:
        self.expect_word("select", "Expecting 'SELECT'.")
        columns = [self.field()]
        while self.accept_symbol(","):
            columns.append(self.field())
        self.expect_word("from", "TF51006: The query statement is missing a FROM clause.")
        source = self.advance()
        if source.kind != "word" or source.is_word(*KEYWORDS):
            raise WiqlError(f"Expecting table name. {caused_by(source.text)}")
        if str(source.value).lower() != "workitems":
            raise WiqlError(
                "Only flat queries FROM WorkItems are supported; link queries (WorkItemLinks) "
                f"are not. {caused_by(source.text)}"
            )
        where = self.expression() if self.accept_word("where") else None
        order: list[tuple[FieldRef, bool]] = []
        if self.accept_word("order"):
            self.expect_word("by", "Expecting 'BY'.")
            order.append(self.order_item())
            while self.accept_symbol(","):
                order.append(self.order_item())
        if self.current.kind != "end":
            raise WiqlError(f"Expecting end of string. {caused_by(self.current.text)}")
        return Query(tuple(columns), str(source.value), where, tuple(order))

    def field(self) -> FieldRef:
        token = self.current
        if token.kind == "field" or (token.kind == "word" and not token.is_word(*KEYWORDS)):
            self.advance()
            return FieldRef(str(token.value), token.text)
        raise WiqlError(f"Expecting field name. {caused_by(token.text)}")

    def order_item(self) -> tuple[FieldRef, bool]:
        field = self.field()
        if self.accept_word("desc"):
            return field, True
        self.accept_word("asc")
        return field, False

    def expression(self) -> Expr:
        items = [self.and_expression()]
        while self.accept_word("or"):
            items.append(self.and_expression())
        return items[0] if len(items) == 1 else Or(tuple(items))

    def and_expression(self) -> Expr:
        items = [self.not_expression()]
        while self.accept_word("and"):
            items.append(self.not_expression())
        return items[0] if len(items) == 1 else And(tuple(items))

    def not_expression(self) -> Expr:
        if self.accept_word("not"):
            return Not(self.not_expression())
        if self.accept_symbol("("):
            inner = self.expression()
            if not self.accept_symbol(")"):
                raise WiqlError(f"Expecting ')'. {caused_by(self.current.text)}")
            return inner
        return self.condition()

    def condition(self) -> Condition:
        start = self.position
        field = self.field()
        operator, negated, values = self.operation()
        text = " ".join(token.text for token in self.tokens[start : self.position])
        return Condition(field, operator, values, negated, text)

    def operation(self) -> tuple[Operator, bool, tuple[Value, ...]]:
        token = self.current
        if token.kind == "symbol" and token.value in _COMPARISON_OPERATORS:
            self.advance()
            symbol: Operator = _COMPARISON_OPERATORS[str(token.value)]
            return symbol, False, (self.value(),)
        if self.accept_word("is"):
            negated = self.accept_word("not") is not None
            self.expect_word("empty", "Expecting 'EMPTY'.")
            return "empty", negated, ()
        if self.current.is_word("ever"):
            raise WiqlError(f"The EVER operator is not supported here. {caused_by('ever')}")
        negated = self.accept_word("not") is not None
        if self.accept_word("in"):
            return "in", negated, self.value_list()
        if self.accept_word("under"):
            return "under", negated, (self.value(),)
        if self.accept_word("contains"):
            words = self.accept_word("words") is not None
            return ("words" if words else "contains"), negated, (self.value(),)
        raise WiqlError(f"Expecting comparison operator. {caused_by(self.current.text)}")

    def value_list(self) -> tuple[Value, ...]:
        if not self.accept_symbol("("):
            raise WiqlError(f"Expecting '('. {caused_by(self.current.text)}")
        values = [self.value()]
        while self.accept_symbol(","):
            values.append(self.value())
        if not self.accept_symbol(")"):
            raise WiqlError(f"Expecting ')'. {caused_by(self.current.text)}")
        return tuple(values)

    def value(self) -> Value:
        token = self.current
        sign = 1.0
        if (
            token.kind == "symbol"
            and token.value == "-"
            and self.tokens[self.position + 1].kind == "number"
        ):
            self.advance()
            sign = -1.0
            token = self.current
        if token.kind in ("string", "number"):
            self.advance()
            value = token.value * sign if isinstance(token.value, float) else token.value
            return Constant(value, ("-" if sign < 0 else "") + token.text)
        if token.kind == "macro":
            self.advance()
            return self.macro(token)
        raise WiqlError(f"Expecting constant value. {caused_by(token.text)}")

    def macro(self, token: Token) -> Macro:
        """`@Today - 7`: a macro with a day offset."""
        for symbol, sign in (("+", 1.0), ("-", -1.0)):
            if self.accept_symbol(symbol):
                amount = self.advance()
                if amount.kind != "number":
                    raise WiqlError(f"Expecting constant value. {caused_by(amount.text)}")
                offset = sign * float(amount.value)
                return Macro(str(token.value), offset, f"{token.text} {symbol} {amount.text}")
        return Macro(str(token.value), 0.0, token.text)


def parse(text: str) -> Query:
    """The syntax tree of one WIQL statement, or `WiqlError` with the service's wording."""
    if not text or not text.strip():
        raise WiqlError("The query is empty. " + caused_by(""))
    return _Parser(text).query()
