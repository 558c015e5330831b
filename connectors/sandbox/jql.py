"""A JQL parser for the subset that connectors and users send: a tokenizer and a recursive
descent parser producing a small AST. Evaluation lives in `jql_eval`.

Grammar (keywords are case-insensitive; `&&`, `||`, `!` are JQL's aliases of AND, OR, NOT):

    query    := [or] [ORDER BY sort ("," sort)*]
    or       := and (OR and)*
    and      := not (AND not)*
    not      := NOT not | "(" or ")" | clause
    clause   := field operator operand
    operator := = | != | < | > | <= | >= | ~ | !~ | IN | NOT IN | IS | IS NOT
    operand  := value | "(" value ("," value)* ")" | EMPTY | NULL
    value    := word | "quoted" | 'quoted' | function "(" [value ("," value)*] ")"
    sort     := field [ASC | DESC]

Syntax errors carry Jira's wording ("Error in the JQL Query: Expecting operator but got 'x'.
… (line 1, character 9)") because users see these messages in the report and in `check`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

OPERATORS = ("=", "!=", "<", ">", "<=", ">=", "~", "!~", "in", "not in", "is", "is not")
VALID_OPERATORS_TEXT = (
    "'=', '!=', '<', '>', '<=', '>=', '~', '!~', 'IN', 'NOT IN', 'IS' and 'IS NOT'"
)
RESERVED_WORDS = frozenset({"and", "or", "not", "in", "is", "empty", "null", "order", "by"})
SYMBOLS = ("!=", "!~", "<=", ">=", "&&", "||", "=", "<", ">", "~", "(", ")", ",", "!")
WORD_STOP = set(" \t\r\n\"'=!<>~(),&|")


class JqlError(Exception):
    """A query Jira would answer with 400 and `errorMessages`; `messages` holds them all."""

    def __init__(self, *messages: str) -> None:
        super().__init__(" ".join(messages))
        self.messages = list(messages)


@dataclass(frozen=True, slots=True)
class Token:
    kind: Literal["word", "string", "symbol", "end"]
    text: str
    position: int  # 0-based offset in the query

    @property
    def keyword(self) -> str | None:
        """The lower-cased keyword when this is an unquoted reserved word."""
        lowered = self.text.lower()
        return lowered if self.kind == "word" and lowered in RESERVED_WORDS else None


@dataclass(frozen=True, slots=True)
class Value:
    text: str
    quoted: bool
    position: int


@dataclass(frozen=True, slots=True)
class Function:
    name: str
    arguments: tuple[Value, ...]
    position: int


@dataclass(frozen=True, slots=True)
class Empty:
    position: int


Operand = Value | Function | Empty | tuple[Value | Function, ...]


@dataclass(frozen=True, slots=True)
class Clause:
    field: str
    operator: str
    operand: Operand
    position: int


@dataclass(frozen=True, slots=True)
class And:
    parts: tuple[Node, ...]


@dataclass(frozen=True, slots=True)
class Or:
    parts: tuple[Node, ...]


@dataclass(frozen=True, slots=True)
class Not:
    part: Node


Node = Clause | And | Or | Not


@dataclass(frozen=True, slots=True)
class SortField:
    field: str
    descending: bool
    position: int


@dataclass(frozen=True, slots=True)
class Query:
    where: Node | None
    order_by: tuple[SortField, ...]


def _where(position: int) -> str:
    return f"(line 1, character {position + 1})"


def tokenize(jql: str) -> list[Token]:
    tokens: list[Token] = []
    index, length = 0, len(jql)
    while index < length:
        char = jql[index]
        if char.isspace():
            index += 1
            continue
        if char in "\"'":
            text, index = _quoted(jql, index)
            tokens.append(Token("string", text, index - len(text) - 2))
            continue
        symbol = next((s for s in SYMBOLS if jql.startswith(s, index)), None)
        if symbol is not None:
            tokens.append(Token("symbol", symbol, index))
            index += len(symbol)
            continue
        if char in "&|":
            raise JqlError(
                f"Error in the JQL Query: The character '{char}' is a reserved JQL character. "
                f"You must enclose it in a string or use the escape '\\u{ord(char):04x}' instead. "
                f"{_where(index)}"
            )
        start = index
        while index < length and jql[index] not in WORD_STOP:
            index += 1
        tokens.append(Token("word", jql[start:index], start))
    tokens.append(Token("end", "", length))
    return tokens


def _quoted(jql: str, start: int) -> tuple[str, int]:
    quote = jql[start]
    index = start + 1
    chars: list[str] = []
    while index < len(jql):
        char = jql[index]
        if char == "\\" and index + 1 < len(jql):
            chars.append(jql[index + 1])
            index += 2
            continue
        if char == quote:
            return "".join(chars), index + 1
        chars.append(char)
        index += 1
    raise JqlError(
        f"Error in the JQL Query: The quoted string '{''.join(chars)}' has not been completed. "
        f"{_where(start)}"
    )


class _Parser:
    def __init__(self, jql: str) -> None:
        self.tokens = tokenize(jql)
        self.index = 0

    @property
    def current(self) -> Token:
        return self.tokens[self.index]

    def advance(self) -> Token:
        token = self.tokens[self.index]
        self.index += 1
        return token

    def at_keyword(self, *words: str) -> bool:
        return self.current.keyword in words

    def at_symbol(self, *symbols: str) -> bool:
        return self.current.kind == "symbol" and self.current.text in symbols

    def fail(self, expecting: str) -> JqlError:
        token = self.current
        if token.kind == "end":
            return JqlError(
                f"Error in the JQL Query: Expecting {expecting} before the end of the query."
            )
        return JqlError(
            f"Error in the JQL Query: Expecting {expecting} but got '{token.text}'. "
            f"{_where(token.position)}"
        )

    # -- grammar -------------------------------------------------------------------------
    def query(self) -> Query:
        where = None
        if not self.at_keyword("order") and self.current.kind != "end":
            where = self.or_()
        order_by: tuple[SortField, ...] = ()
        if self.at_keyword("order"):
            self.advance()
            if not self.at_keyword("by"):
                raise self.fail("'by'")
            self.advance()
            order_by = self.sort_fields()
        if self.current.kind != "end":
            raise self.fail("either 'OR' or 'AND'" if where is not None else "a field name")
        return Query(where, order_by)

    def or_(self) -> Node:
        parts = [self.and_()]
        while self.at_keyword("or") or self.at_symbol("||"):
            self.advance()
            parts.append(self.and_())
        return parts[0] if len(parts) == 1 else Or(tuple(parts))

    def and_(self) -> Node:
        parts = [self.not_()]
        while self.at_keyword("and") or self.at_symbol("&&"):
            self.advance()
            parts.append(self.not_())
        return parts[0] if len(parts) == 1 else And(tuple(parts))

    def not_(self) -> Node:
        if self.at_keyword("not") or self.at_symbol("!"):
            self.advance()
            return Not(self.not_())
        if self.at_symbol("("):
            self.advance()
            inner = self.or_()
            if not self.at_symbol(")"):
                raise self.fail("')'")
            self.advance()
            return inner
        return self.clause()

    def field_name(self) -> Token:
        token = self.current
        if token.kind == "string" or (token.kind == "word" and token.keyword is None):
            return self.advance()
        raise self.fail("a field name")

    def clause(self) -> Clause:
        field = self.field_name()
        operator = self.operator()
        if operator in ("in", "not in"):
            operand: Operand = self.value_list()
        elif operator in ("is", "is not"):
            if not self.at_keyword("empty", "null"):
                raise self.fail("'EMPTY' or 'NULL'")
            operand = Empty(self.advance().position)
        elif self.at_keyword("empty", "null"):
            operand = Empty(self.advance().position)
        else:
            operand = self.value()
        return Clause(field.text, operator, operand, field.position)

    def operator(self) -> str:
        token = self.current
        if token.kind == "symbol" and token.text in OPERATORS:
            self.advance()
            return token.text
        keyword = token.keyword
        if keyword in ("in", "is"):
            self.advance()
            if keyword == "is" and self.at_keyword("not"):
                self.advance()
                return "is not"
            return keyword
        if keyword == "not":
            self.advance()
            if self.at_keyword("in"):
                self.advance()
                return "not in"
        shown = f"but got '{token.text}'. " if token.kind != "end" else "before the end. "
        raise JqlError(
            f"Error in the JQL Query: Expecting operator {shown}The valid operators are "
            f"{VALID_OPERATORS_TEXT}. {_where(token.position)}"
        )

    def value(self) -> Value | Function:
        token = self.current
        if token.kind == "string":
            self.advance()
            return Value(token.text, True, token.position)
        if token.kind == "word" and token.keyword is None:
            self.advance()
            if self.at_symbol("("):
                return Function(token.text, self.function_arguments(), token.position)
            return Value(token.text, False, token.position)
        shown = token.text or "end of query"
        if token.kind == "end":
            raise self.fail("either a value, list or function")
        raise JqlError(
            "Error in the JQL Query: Expecting either a value, list or function but got "
            f"'{shown}'. You must surround '{shown}' in quotation marks to use it as a value. "
            f"{_where(token.position)}"
        )

    def function_arguments(self) -> tuple[Value, ...]:
        self.advance()  # "("
        arguments: list[Value] = []
        while not self.at_symbol(")"):
            token = self.current
            if token.kind not in ("word", "string"):
                raise self.fail("')'")
            arguments.append(Value(token.text, token.kind == "string", token.position))
            self.advance()
            if self.at_symbol(","):
                self.advance()
        self.advance()
        return tuple(arguments)

    def value_list(self) -> tuple[Value | Function, ...]:
        """`IN (a, b)` or `IN function()` (e.g. `issuetype in standardIssueTypes()`)."""
        if not self.at_symbol("("):
            if self.current.kind == "word" and self.tokens[self.index + 1].text == "(":
                function = self.value()
                if isinstance(function, Function):
                    return (function,)
            raise self.fail("'('")
        self.advance()
        values = [self.value()]
        while self.at_symbol(","):
            self.advance()
            values.append(self.value())
        if not self.at_symbol(")"):
            raise self.fail("')'")
        self.advance()
        return tuple(values)

    def sort_fields(self) -> tuple[SortField, ...]:
        fields = [self.sort_field()]
        while self.at_symbol(","):
            self.advance()
            fields.append(self.sort_field())
        return tuple(fields)

    def sort_field(self) -> SortField:
        token = self.field_name()
        descending = False
        if self.current.kind == "word" and self.current.text.lower() in ("asc", "desc"):
            descending = self.advance().text.lower() == "desc"
        return SortField(token.text, descending, token.position)


def parse(jql: str) -> Query:
    """Parse `jql`; raises `JqlError` with Jira's wording on a syntax error."""
    return _Parser(jql).query()
