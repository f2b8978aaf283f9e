"""Generate code: ask for a function, take the fenced code block out of the answer.

Models wrap code in Markdown fences (```python ... ```) and often add prose around
it. :func:`extract_code_blocks` finds every fenced block (backticks or tildes, with
or without a language, closed or cut off by ``max_tokens``); the example keeps the
first one in the language asked for, checks that Python code at least compiles
(it never runs it) and can save it with ``--output FILE``.

Run: ``python examples/code_generator.py`` (the simulator, whose answers hold no
code: the example says so and prints the raw answer) or
``python examples/code_generator.py --server URL [--model KEY] [--task TEXT]``.
"""

from __future__ import annotations

import re
import sys
from typing import List, NamedTuple, Optional, Sequence

import _common

import lmstrix

TASK = (
    "Write a Python function is_palindrome(text) that ignores case, spaces and "
    "punctuation. Include a docstring."
)
SYSTEM = (
    "You are a careful programmer. Answer with exactly one fenced Markdown code block "
    "that contains the complete code, and nothing else."
)

# An opening fence: up to three spaces, then at least three backticks or tildes, then
# an optional info string whose first word is the language (CommonMark's rules).
_FENCE = re.compile(r"^(?P<indent> {0,3})(?P<fence>`{3,}|~{3,})(?P<info>.*)$")


class CodeBlock(NamedTuple):
    """One fenced block: its ``language`` (``""`` if none), ``code``, and whether it closed."""

    language: str
    code: str
    closed: bool


def extract_code_blocks(text: str) -> List[CodeBlock]:
    """Every fenced code block in the Markdown ``text``, in order.

    A block ends at a line holding only a fence of the same character, at least as long
    as the opening one; a block left open (an answer cut off by ``max_tokens``) runs to
    the end of the text and has ``closed=False``.

    >>> extract_code_blocks("Here:\\n```py\\nx = 1\\n```\\nDone.")
    [CodeBlock(language='py', code='x = 1\\n', closed=True)]
    """
    blocks: List[CodeBlock] = []
    lines = text.splitlines()
    i = 0
    while i < len(lines):
        opening = _FENCE.match(lines[i])
        i += 1
        if opening is None:
            continue
        fence, info = opening.group("fence"), opening.group("info").strip()
        if fence[0] == "`" and "`" in info:
            continue  # inline code such as ```x``` is not a fence
        indent = len(opening.group("indent"))
        body: List[str] = []
        closed = False
        while i < len(lines):
            line = lines[i]
            i += 1
            if _is_closing(line, fence):
                closed = True
                break
            body.append(_unindent(line, indent))
        language = info.split()[0].lower() if info else ""
        blocks.append(CodeBlock(language, "".join(f"{line}\n" for line in body), closed))
    return blocks


def _is_closing(line: str, fence: str) -> bool:
    stripped = line.strip(" ")
    indent = len(line) - len(line.lstrip(" "))
    return (
        indent <= 3
        and len(stripped.rstrip()) >= len(fence)
        and set(stripped.rstrip()) == {fence[0]}
    )


def _unindent(line: str, indent: int) -> str:
    """Remove up to ``indent`` leading spaces (the opening fence's indentation)."""
    spaces = len(line) - len(line.lstrip(" "))
    return line[min(spaces, indent) :]


def pick_block(blocks: Sequence[CodeBlock], language: str) -> Optional[CodeBlock]:
    """The first block in ``language`` (``py`` counts as ``python``), else the first block."""
    aliases = {"py": "python", "python3": "python", "js": "javascript", "sh": "bash"}
    wanted = aliases.get(language.lower(), language.lower())
    for block in blocks:
        if aliases.get(block.language, block.language) == wanted:
            return block
    return blocks[0] if blocks else None


def main(argv: Optional[List[str]] = None) -> int:
    """Ask for code, print the extracted block (or the raw answer when there is none)."""
    parser = _common.parser("Generate code and extract it from the model's answer.")
    parser.add_argument("--task", default=TASK, help="what to write (default: a palindrome check)")
    parser.add_argument("--language", default="python", help="the language wanted (python)")
    parser.add_argument("--output", metavar="FILE", help="also save the code to FILE")
    args = parser.parse_args(argv)
    messages = [{"role": "system", "content": SYSTEM}, {"role": "user", "content": args.task}]
    try:
        with _common.connect(args) as client:
            model = _common.pick_model(client, args.model)
            print(f"model: {model}\ntask: {args.task}\n")
            answer = client.chat(model, messages, temperature=0.2, max_tokens=1024)
    except lmstrix.LMStrixError as exc:
        return _common.fail(exc)
    print(f"({_common.figures(answer)})")
    block = pick_block(extract_code_blocks(answer.text), args.language)
    if block is None:
        print("no fenced code in the answer; the raw answer was:")
        print(answer.text.strip())
        return 0
    print(f"code block: {block.language or '(no language)'}, {len(block.code.splitlines())} lines")
    if not block.closed:
        print("warning: the block was not closed (the answer may have been cut off)")
    print(f"```{block.language}\n{block.code}```")
    if (block.language or args.language) in ("python", "py", "python3"):
        try:
            compile(block.code, "<answer>", "exec")  # checks the syntax; runs nothing
            print("syntax check: ok")
        except SyntaxError as exc:
            print(f"syntax check: line {exc.lineno}: {exc.msg}")
        except ValueError as exc:  # e.g. a NUL character in the code
            print(f"syntax check: {exc}")
    if args.output:
        with open(args.output, "w", encoding="utf-8") as handle:
            handle.write(block.code)
        print(f"saved to {args.output}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
