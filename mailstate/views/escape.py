"""Customer text in GitHub-flavoured markdown (the plan posted as a pull request comment).

Names, subjects, addresses and notes come from domain files, that is from whoever opened the
pull request. Escaping markdown character by character does not stop everything GitHub adds
after parsing (mentions such as ``@org/admins``, bare-URL autolinks), so customer text is set
as a code span: inside one, GitHub renders no image, link, HTML, emphasis or mention.
"""

from __future__ import annotations

import re

_BREAKS = re.compile(r"[\r\n\u0085\u2028\u2029]+")
_TICKS = re.compile(r"`+")


def escape_md(text: str, in_table: bool = True) -> str:
    """`text` as inert markdown: one code span on one line ('' stays '').

    The fence is one backtick longer than any run of backticks inside, and a space pads text
    that starts or ends with a backtick or a space (a code span strips one of each). In a
    table cell a '|' would still end the cell, so it is escaped (GFM renders `\\|` as `|`).
    """
    if not text:
        return ""
    text = _BREAKS.sub(" ", text)
    fence = "`" * (max((len(m) for m in _TICKS.findall(text)), default=0) + 1)
    pad = " " if text[0] in "` " or text[-1] in "` " else ""
    if in_table:
        text = text.replace("|", "\\|")
    return f"{fence}{pad}{text}{pad}{fence}"
