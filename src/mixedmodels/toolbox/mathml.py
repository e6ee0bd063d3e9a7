"""LaTeX → MathML for the equations :mod:`.latex` writes, so pages show them offline.

The report and the notebook view must render the model equation without MathJax, a CDN or any
network: browsers render MathML natively. This converter covers the LaTeX subset that
:func:`mixedmodels.toolbox.latex.to_latex` emits (``aligned`` and ``array`` environments, ``\\left``
/ ``\\right`` fences, sub- and superscripts, ``\\frac``, ``\\sqrt``, ``\\hat``,
``\\operatorname``, ``\\text``, Greek letters and a few operators) and refuses anything else
with :class:`LatexConversionError` rather than guessing. The LaTeX source rides along as
MathML's ``<annotation encoding="application/x-tex">``, which browsers do not display but
copy-paste and screen readers can use.
"""

from __future__ import annotations

import html

from ..errors import MixedModelsError


class LatexConversionError(MixedModelsError, ValueError):
    """The LaTeX uses a construct outside the subset :func:`latex_to_mathml` converts."""


_GREEK = {
    name: chr(code)
    for name, code in {
        "alpha": 0x3B1,
        "beta": 0x3B2,
        "gamma": 0x3B3,
        "delta": 0x3B4,
        "epsilon": 0x3F5,
        "varepsilon": 0x3B5,
        "zeta": 0x3B6,
        "eta": 0x3B7,
        "theta": 0x3B8,
        "kappa": 0x3BA,
        "lambda": 0x3BB,
        "mu": 0x3BC,
        "nu": 0x3BD,
        "xi": 0x3BE,
        "pi": 0x3C0,
        "rho": 0x3C1,
        "sigma": 0x3C3,
        "tau": 0x3C4,
        "phi": 0x3D5,
        "varphi": 0x3C6,
        "chi": 0x3C7,
        "psi": 0x3C8,
        "omega": 0x3C9,
        "Gamma": 0x393,
        "Delta": 0x394,
        "Theta": 0x398,
        "Lambda": 0x39B,
        "Sigma": 0x3A3,
        "Phi": 0x3A6,
        "Psi": 0x3A8,
        "Omega": 0x3A9,
    }.items()
}
_OPERATORS = {
    "sim": "\u223c",
    "times": "\u00d7",
    "cdot": "\u22c5",
    "dots": "\u2026",
    "ldots": "\u2026",
    "cdots": "\u22ef",
    "le": "\u2264",
    "leq": "\u2264",
    "ge": "\u2265",
    "geq": "\u2265",
    "ne": "\u2260",
    "pm": "\u00b1",
    "approx": "\u2248",
    "mid": "\u2223",
}
_FUNCTIONS = {"log", "exp", "ln", "logit"}
_SPACES = {",": "0.1667em", ":": "0.2222em", ";": "0.2778em", " ": "0.25em", "quad": "1em"}
_ESCAPED = set("_%&#${}")
_CHAR_OPERATORS = set("+-=,()[]/|<>!;:'*.")
#: stop tokens of an expression inside an environment
_CELL_END = "&"
_ROW_END = "\\\\"


def _mo(text: str, **attributes: str) -> str:
    extra = "".join(f' {key}="{value}"' for key, value in attributes.items())
    return f"<mo{extra}>{html.escape(text)}</mo>"


def _mi(text: str) -> str:
    # one letter is italic by default in MathML; a name in \operatorname stays upright
    variant = ' mathvariant="normal"' if len(text) == 1 else ""
    return f"<mi{variant}>{html.escape(text)}</mi>"


def _mtext(text: str) -> str:
    # MathML collapses edge spaces as HTML does; LaTeX's \text keeps them
    if text[:1] == " ":
        text = "\u00a0" + text[1:]
    if text[-1:] == " ":
        text = text[:-1] + "\u00a0"
    return f"<mtext>{html.escape(text)}</mtext>"


class _Parser:
    def __init__(self, source: str):
        self.source = source
        self.at = 0

    # -- reading ---------------------------------------------------------------------------
    def error(self, message: str) -> LatexConversionError:
        snippet = self.source[max(0, self.at - 20) : self.at + 20].replace("\n", " ")
        return LatexConversionError(f"{message} at character {self.at} (near {snippet!r}).")

    def skip_space(self) -> None:
        while self.at < len(self.source) and self.source[self.at].isspace():
            self.at += 1

    def peek(self) -> str:
        """The next token without consuming it: a command, an escape, ``\\\\`` or a char."""
        self.skip_space()
        if self.at >= len(self.source):
            return ""
        char = self.source[self.at]
        if char != "\\":
            return char
        nxt = self.source[self.at + 1 : self.at + 2]
        if nxt == "\\":
            return _ROW_END
        if nxt.isalpha():
            end = self.at + 1
            while end < len(self.source) and self.source[end].isalpha():
                end += 1
            return self.source[self.at : end]
        return self.source[self.at : self.at + 2]

    def take(self) -> str:
        token = self.peek()
        self.at += len(token)
        return token

    def expect(self, token: str) -> None:
        if self.take() != token:
            raise self.error(f"expected {token!r}")

    def raw_group(self) -> str:
        """The text of a ``{...}`` argument, its LaTeX escapes (``\\_``, ``\\ ``) undone."""
        self.expect("{")
        out = []
        depth = 0
        while self.at < len(self.source):
            char = self.source[self.at]
            if char == "\\" and self.at + 1 < len(self.source):
                escaped = self.source[self.at + 1]
                if escaped in _ESCAPED or escaped == " ":
                    out.append(escaped)
                    self.at += 2
                    continue
                raise self.error("a command inside a text argument")
            self.at += 1
            if char == "{":
                depth += 1
            elif char == "}":
                if depth == 0:
                    return "".join(out)
                depth -= 1
            out.append(char)
        raise self.error("unclosed '{'")

    # -- grammar ---------------------------------------------------------------------------
    def expression(self, stops: tuple[str, ...]) -> list[str]:
        nodes: list[str] = []
        while True:
            token = self.peek()
            if token == "" or token in stops:
                return nodes
            nodes.append(self.scripted())

    def row(self, stops: tuple[str, ...]) -> str:
        nodes = self.expression(stops)
        return nodes[0] if len(nodes) == 1 else f"<mrow>{''.join(nodes)}</mrow>"

    def scripted(self) -> str:
        base = self.atom()
        sub = sup = None
        while self.peek() in ("_", "^"):
            mark = self.take()
            argument = self.atom()
            if mark == "_":
                if sub is not None:
                    raise self.error("double subscript")
                sub = argument
            else:
                if sup is not None:
                    raise self.error("double superscript")
                sup = argument
        if sub is not None and sup is not None:
            return f"<msubsup>{base}{sub}{sup}</msubsup>"
        if sub is not None:
            return f"<msub>{base}{sub}</msub>"
        if sup is not None:
            return f"<msup>{base}{sup}</msup>"
        return base

    def atom(self) -> str:
        token = self.take()
        if token == "":
            raise self.error("unexpected end of the equation")
        if token == "{":
            inner = self.row(("}",))
            self.expect("}")
            return inner if inner.startswith("<mrow>") else f"<mrow>{inner}</mrow>"
        if token.startswith("\\") and len(token) > 1:
            return self.command(token[1:])
        if token.isdigit():
            digits = token
            while self.at < len(self.source) and (
                self.source[self.at].isdigit()
                or (
                    self.source[self.at] == "." and self.source[self.at + 1 : self.at + 2].isdigit()
                )
            ):
                digits += self.source[self.at]
                self.at += 1
            return f"<mn>{digits}</mn>"
        if token.isalpha():
            return f"<mi>{html.escape(token)}</mi>"
        if token == "-":
            return _mo("\u2212")
        if token in _CHAR_OPERATORS:
            return _mo(token)
        raise self.error(f"unexpected {token!r}")

    def command(self, name: str) -> str:
        if name in _GREEK:
            letter = html.escape(_GREEK[name])
            # as in LaTeX: lower-case Greek italic, capitals upright
            if name[0].isupper():
                return f'<mi mathvariant="normal">{letter}</mi>'
            return f"<mi>{letter}</mi>"
        if name in _OPERATORS:
            return _mo(_OPERATORS[name])
        if name in _SPACES:
            return f'<mspace width="{_SPACES[name]}"/>'
        if name in _ESCAPED:
            return _mo(name)
        if name in _FUNCTIONS:
            return f"<mi>{name}</mi><mo>\u2061</mo>"
        if name == "operatorname":
            return _mi(self.raw_group())
        if name == "text":
            return _mtext(self.raw_group())
        if name == "frac":
            numerator, denominator = self.atom(), self.atom()
            return f"<mfrac>{numerator}{denominator}</mfrac>"
        if name == "sqrt":
            return f"<msqrt>{self.atom()}</msqrt>"
        if name in ("hat", "widehat"):
            stretchy = "true" if name == "widehat" else "false"
            return f'<mover accent="true">{self.atom()}{_mo("^", stretchy=stretchy)}</mover>'
        if name == "left":
            return self.fenced()
        if name == "begin":
            return self.environment()
        raise self.error(f"\\{name} is not supported")

    def fence_symbol(self) -> str:
        token = self.take()
        if token == ".":
            return ""
        if token in ("(", ")", "[", "]", "|"):
            return token
        if token in ("\\{", "\\}"):
            return token[1]
        raise self.error(f"unsupported fence {token!r}")

    def fenced(self) -> str:
        opening = self.fence_symbol()
        inner = self.expression(("\\right",))
        self.expect("\\right")
        closing = self.fence_symbol()
        fences = [_mo(f, fence="true", stretchy="true") if f else "" for f in (opening, closing)]
        return f"<mrow>{fences[0]}{''.join(inner)}{fences[1]}</mrow>"

    def environment(self) -> str:
        name = self.raw_group()
        if name == "aligned":
            align = ["right", "left"]
        elif name == "array":
            spec = self.raw_group()
            align = [{"l": "left", "c": "center", "r": "right"}[c] for c in spec if c in "lcr"]
            if not align:
                raise self.error("an array without columns")
        else:
            raise self.error(f"the {name} environment is not supported")
        rows = []
        while True:
            cells = [self.row((_CELL_END, _ROW_END, "\\end"))]
            while self.peek() == _CELL_END:
                self.take()
                cells.append(self.row((_CELL_END, _ROW_END, "\\end")))
            rows.append(cells)
            token = self.take()
            if token == "\\end":
                if self.raw_group() != name:
                    raise self.error(f"\\begin{{{name}}} closed by another environment")
                break
            if token != _ROW_END:
                raise self.error(f"unclosed \\begin{{{name}}}")
        if len(rows) > 1 and rows[-1] == ["<mrow></mrow>"]:
            rows.pop()  # a trailing \\ before \end
        width = max(len(cells) for cells in rows)
        if name == "aligned":
            align = [align[c % 2] for c in range(width)]
        columns = " ".join(align[c] if c < len(align) else align[-1] for c in range(width))
        body = "".join(
            "<mtr>" + "".join(f"<mtd>{cell}</mtd>" for cell in cells) + "</mtr>" for cells in rows
        )
        return f'<mtable columnalign="{columns}" displaystyle="true">{body}</mtable>'


def latex_to_mathml(latex: str, *, display: bool = True) -> str:
    """Convert an equation of :func:`mixedmodels.toolbox.latex.to_latex` into a MathML element.

    Parameters
    ----------
    latex : str
        LaTeX math, optionally wrapped in ``$$ ... $$``, ``\\[ ... \\]`` or ``$ ... $``.
    display : bool
        A block (display) equation, or inline.

    Returns
    -------
    str
        A ``<math>`` element (HTML5 syntax: no namespace declaration needed) whose
        ``<annotation encoding="application/x-tex">`` keeps the source.

    Raises
    ------
    LatexConversionError
        For LaTeX outside the converted subset (the message names the construct).

    Examples
    --------
    >>> print(latex_to_mathml(r"\\sigma^2_{\\alpha_{j}}", display=False))  # doctest: +ELLIPSIS
    <math display="inline"><semantics><msubsup><mi>σ</mi><mrow><msub><mi>α</mi>...</msubsup>...
    """
    body = latex.strip()
    for left, right in (("$$", "$$"), ("\\[", "\\]"), ("$", "$")):
        if body.startswith(left) and body.endswith(right) and len(body) >= len(left + right):
            body = body[len(left) : len(body) - len(right)]
            break
    parser = _Parser(body)
    content = parser.row(("}",))
    if parser.peek() != "":
        raise parser.error(f"unexpected {parser.peek()!r}")
    mode = "block" if display else "inline"
    return (
        f'<math display="{mode}"><semantics>{content or "<mrow></mrow>"}'
        f'<annotation encoding="application/x-tex">{html.escape(latex)}</annotation>'
        "</semantics></math>"
    )
