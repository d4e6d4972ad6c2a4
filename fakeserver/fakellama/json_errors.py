"""llama-server's message for a body that is not JSON, as nlohmann::json's parser words it.

llama-server parses request bodies with nlohmann::json and answers a 400 whose message is
the parser's exception text: the error kind, the line and column where the lexer stood, the
context (value, array, object key, ...), and for lexer errors the bytes read since the
last string or number began ("last read"). Python's parser stops at other places with
other words, so this module re-traces nlohmann's lexer and parser (same states, same
position counting) far enough to name the first error exactly.
"""

from __future__ import annotations

import math

_EOF = -1
(_UNINIT, _TRUE, _FALSE, _NULL, _STRING, _NUMBER, _BEGIN_ARRAY, _BEGIN_OBJECT, _END_ARRAY,
 _END_OBJECT, _NAME_SEP, _VALUE_SEP, _PARSE_ERROR, _EOI, _LITERAL_OR_VALUE) = range(15)
_NAMES = {_UNINIT: "<uninitialized>", _TRUE: "true literal", _FALSE: "false literal",
          _NULL: "null literal", _STRING: "string literal", _NUMBER: "number literal",
          _BEGIN_ARRAY: "'['", _BEGIN_OBJECT: "'{'", _END_ARRAY: "']'", _END_OBJECT: "'}'",
          _NAME_SEP: "':'", _VALUE_SEP: "','", _PARSE_ERROR: "<parse error>",
          _EOI: "end of input", _LITERAL_OR_VALUE: "'[', '{', or a literal"}
_STRUCTURAL = {ord("["): _BEGIN_ARRAY, ord("]"): _END_ARRAY, ord("{"): _BEGIN_OBJECT,
               ord("}"): _END_OBJECT, ord(":"): _NAME_SEP, ord(","): _VALUE_SEP}
_CONTROL_NAMES = ("NUL", "SOH", "STX", "ETX", "EOT", "ENQ", "ACK", "BEL", "BS", "HT", "LF",
                  "VT", "FF", "CR", "SO", "SI", "DLE", "DC1", "DC2", "DC3", "DC4", "NAK",
                  "SYN", "ETB", "CAN", "EM", "SUB", "ESC", "FS", "GS", "RS", "US")
_SHORT_ESCAPES = {0x08: "b", 0x09: "t", 0x0A: "n", 0x0C: "f", 0x0D: "r"}
EMPTY_INPUT = ("[json.exception.parse_error.101] parse error at line 1, column 1: attempting "
               "to parse an empty input; check that your input string or stream contains the "
               "expected JSON")


class _Lexer:
    """nlohmann::json's lexer, counting positions and the token string the same way."""

    def __init__(self, data: bytes) -> None:
        self.data = data
        self.index = 0
        self.current = _EOF
        self.next_unget = False
        self.total = 0
        self.column = 0
        self.lines = 0
        self.token: list[int] = []
        self.error = ""
        self.number_text = ""

    def get(self) -> int:
        self.total += 1
        self.column += 1
        if self.next_unget:
            self.next_unget = False
        elif self.index < len(self.data):
            self.current = self.data[self.index]
            self.index += 1
        else:
            self.current = _EOF
        if self.current != _EOF:
            self.token.append(self.current)
        if self.current == 0x0A:
            self.lines += 1
            self.column = 0
        return self.current

    def unget(self) -> None:
        self.next_unget = True
        self.total -= 1
        if self.column == 0:
            if self.lines > 0:
                self.lines -= 1
        else:
            self.column -= 1
        if self.current != _EOF:
            self.token.pop()

    def reset(self) -> None:
        self.token = [self.current] if self.current != _EOF else []

    def token_string(self) -> str:
        out = []
        for byte in self.token:
            out.append(f"<U+{byte:04X}>" if byte <= 0x1F else chr(byte))
        return "".join(out).encode("latin-1").decode("utf-8", errors="replace")

    def fail(self, message: str) -> int:
        self.error = message
        return _PARSE_ERROR

    def scan(self) -> int:
        while self.get() in (0x20, 0x09, 0x0A, 0x0D):
            pass
        current = self.current
        if current in _STRUCTURAL:
            return _STRUCTURAL[current]
        if current == ord("t"):
            return self._literal(b"true", _TRUE)
        if current == ord("f"):
            return self._literal(b"false", _FALSE)
        if current == ord("n"):
            return self._literal(b"null", _NULL)
        if current == ord('"'):
            return self._string()
        if current == ord("-") or ord("0") <= current <= ord("9"):
            return self._number()
        if current in (0, _EOF):
            return _EOI
        return self.fail("invalid literal")

    def _literal(self, text: bytes, kind: int) -> int:
        for expected in text[1:]:
            if self.get() != expected:
                return self.fail("invalid literal")
        return kind

    def _hex4(self) -> int:
        value = 0
        for _ in range(4):
            char = self.get()
            digit = chr(char) if 0 <= char < 128 else ""
            if digit == "" or digit not in "0123456789abcdefABCDEF":
                return -1
            value = value * 16 + int(digit, 16)
        return value

    def _string(self) -> int:
        self.reset()
        while True:
            char = self.get()
            if char == _EOF:
                return self.fail("invalid string: missing closing quote")
            if char == ord('"'):
                return _STRING
            if char == ord("\\"):
                if (problem := self._escape()) is not None:
                    return self.fail(problem)
            elif char <= 0x1F:
                short = _SHORT_ESCAPES.get(char)
                return self.fail(f"invalid string: control character U+{char:04X} "
                                 f"({_CONTROL_NAMES[char]}) must be escaped to \\u{char:04X}"
                                 + (f" or \\{short}" if short else ""))
            elif char >= 0x80 and not self._utf8_tail(char):
                return self.fail("invalid string: ill-formed UTF-8 byte")

    def _escape(self) -> str | None:
        char = self.get()
        if char != _EOF and char in b'"\\/bfnrt':
            return None
        if char != ord("u"):
            return "invalid string: forbidden character after backslash"
        code = self._hex4()
        if code == -1:
            return "invalid string: '\\u' must be followed by 4 hex digits"
        if 0xD800 <= code <= 0xDBFF:
            if self.get() == ord("\\") and self.get() == ord("u"):
                low = self._hex4()
                if low == -1:
                    return "invalid string: '\\u' must be followed by 4 hex digits"
                if 0xDC00 <= low <= 0xDFFF:
                    return None
            return "invalid string: surrogate U+D800..U+DBFF must be followed by U+DC00..U+DFFF"
        if 0xDC00 <= code <= 0xDFFF:
            return "invalid string: surrogate U+DC00..U+DFFF must follow U+D800..U+DBFF"
        return None

    def _utf8_tail(self, lead: int) -> bool:
        # The byte ranges nlohmann accepts after each lead byte (RFC 3629).
        if 0xC2 <= lead <= 0xDF:
            ranges = [(0x80, 0xBF)]
        elif lead == 0xE0:
            ranges = [(0xA0, 0xBF), (0x80, 0xBF)]
        elif 0xE1 <= lead <= 0xEC or lead in (0xEE, 0xEF):
            ranges = [(0x80, 0xBF)] * 2
        elif lead == 0xED:
            ranges = [(0x80, 0x9F), (0x80, 0xBF)]
        elif lead == 0xF0:
            ranges = [(0x90, 0xBF), (0x80, 0xBF), (0x80, 0xBF)]
        elif 0xF1 <= lead <= 0xF3:
            ranges = [(0x80, 0xBF)] * 3
        elif lead == 0xF4:
            ranges = [(0x80, 0x8F), (0x80, 0xBF), (0x80, 0xBF)]
        else:
            return False
        for low, high in ranges:
            char = self.get()
            if not low <= char <= high:
                return False
        return True

    def _number(self) -> int:
        self.reset()

        def digit(char: int) -> bool:
            return ord("0") <= char <= ord("9")

        char = self.current
        if char == ord("-"):
            char = self.get()
            if not digit(char):
                return self.fail("invalid number; expected digit after '-'")
        if char != ord("0"):
            while digit(char := self.get()):
                pass
        else:
            char = self.get()
        if char == ord("."):
            if not digit(self.get()):
                return self.fail("invalid number; expected digit after '.'")
            while digit(char := self.get()):
                pass
        if char in (ord("e"), ord("E")):
            char = self.get()
            if char in (ord("+"), ord("-")):
                if not digit(self.get()):
                    return self.fail("invalid number; expected digit after exponent sign")
            elif not digit(char):
                return self.fail("invalid number; expected '+', '-', or digit after exponent")
            while digit(self.get()):
                pass
        self.unget()
        self.number_text = bytes(self.token).decode("ascii", errors="replace")
        return _NUMBER


def parse_error_message(data: bytes) -> str | None:
    """nlohmann::json's exception text for a body that is not one JSON value, else None."""
    if not data:
        return EMPTY_INPUT
    lexer = _Lexer(data)
    if data[0] == 0xEF:  # a byte order mark is skipped (and counted)
        lexer.get()
        if lexer.get() != 0xBB or lexer.get() != 0xBF:
            lexer.error = "invalid BOM; must be 0xEF 0xBB 0xBF if given"
            return (f"[json.exception.parse_error.101] parse error at line 1, column "
                    f"{lexer.column}: syntax error while parsing value - {lexer.error}; "
                    f"last read: '{lexer.token_string()}'")

    def error(token: int, expected: int, context: str) -> str:
        if token == _PARSE_ERROR:
            detail = f"{lexer.error}; last read: '{lexer.token_string()}'"
        else:
            detail = f"unexpected {_NAMES[token]}"
        if expected != _UNINIT:
            detail += f"; expected {_NAMES[expected]}"
        return (f"[json.exception.parse_error.101] parse error at line {lexer.lines + 1}, "
                f"column {lexer.column}: syntax error while parsing {context} - {detail}")

    stack: list[int] = []
    token = lexer.scan()
    if token == _EOI and lexer.total == 1:
        return EMPTY_INPUT  # nothing at all, or a NUL byte first
    while True:
        # A value starts at token; an empty {} or [] is complete at once.
        if token == _BEGIN_OBJECT:
            token = lexer.scan()
            if token != _END_OBJECT:
                if token != _STRING:
                    return error(token, _STRING, "object key")
                if (token := lexer.scan()) != _NAME_SEP:
                    return error(token, _NAME_SEP, "object separator")
                stack.append(_BEGIN_OBJECT)
                token = lexer.scan()
                continue
        elif token == _BEGIN_ARRAY:
            token = lexer.scan()
            if token != _END_ARRAY:
                stack.append(_BEGIN_ARRAY)
                continue
        elif token == _NUMBER:
            if not math.isfinite(float(lexer.number_text)):
                return (f"[json.exception.out_of_range.406] number overflow parsing "
                        f"'{lexer.token_string()}'")
        elif token == _PARSE_ERROR:
            return error(token, _UNINIT, "value")
        elif token not in (_TRUE, _FALSE, _NULL, _STRING):
            return error(token, _LITERAL_OR_VALUE, "value")
        # The value is complete: close containers until one expects another value.
        while True:
            token = lexer.scan()
            if not stack:
                return None if token == _EOI else error(token, _EOI, "value")
            if stack[-1] == _BEGIN_ARRAY:
                if token == _VALUE_SEP:
                    token = lexer.scan()
                    break
                if token == _END_ARRAY:
                    stack.pop()
                    continue
                return error(token, _END_ARRAY, "array")
            if token == _VALUE_SEP:
                if (token := lexer.scan()) != _STRING:
                    return error(token, _STRING, "object key")
                if (token := lexer.scan()) != _NAME_SEP:
                    return error(token, _NAME_SEP, "object separator")
                token = lexer.scan()
                break
            if token == _END_OBJECT:
                stack.pop()
                continue
            return error(token, _END_OBJECT, "object")
