"""``--help`` tells the truth: every field of every command shows a text of its own (tyro takes
it from the comment beside or above the field, and a comment above one field also lands on the
next field when nothing separates them), and every group of fields its own description."""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Callable, Sequence

import pytest
from tiny_lm import load_script

from glrnn.evaluate import main as evaluate_main
from glrnn.online.stream import cli as stream_cli
from glrnn.tokenizer_train import main as tokenizer_train_main

ANSI = re.compile(r"\x1b\[[0-9;]*m")
# what tyro appends to a field's own text: its default, or how it behaves
HINT = re.compile(r"\s*\((?:default|default if used|fixed to|repeatable|repeatable, appends to"
                  r"|unset by default|required|optional)(?::.*)?\)$")


def help_text(command: Callable[[Sequence[str]], object], capsys: pytest.CaptureFixture,
              monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """The lines ``command(["--help"])`` prints, 100 columns wide (one column of boxes)."""
    monkeypatch.setenv("COLUMNS", "100")
    with pytest.raises(SystemExit) as stop:
        command(["--help"])
    assert stop.value.code == 0
    return ANSI.sub("", capsys.readouterr().out).splitlines()


def parse_help(lines: list[str]) -> tuple[dict[str, str], dict[str, str]]:
    """({flag: its own text, the default hint removed}, {group: its description}) from tyro's
    boxes: a group opens with ``╭─ NAME ─╮``, its description (if any) runs to a ``├──┤``
    rule, then each field starts at the box's left edge with ``--flag METAVAR`` and two or
    more spaces before its text, continued on indented lines."""
    fields: dict[str, list[str]] = {}
    groups: dict[str, list[str]] = {}
    flag = group = None
    for line in lines:
        stripped = line.strip()
        if stripped.startswith("╭"):
            group, flag = stripped.strip("╭─╮ "), None
            groups[group] = []
        elif stripped.startswith(("├", "╰")):
            group = None  # the rule after a description, or the box's end
        elif stripped[:1] == "│" and len(stripped) > 1:
            content = stripped[1:].rstrip("│").rstrip()
            content = content[1:] if content.startswith(" ") else content  # the padding
            if content.startswith("--"):
                invocation, *text = re.split(r"\s{2,}", content, maxsplit=1)
                flag, group = invocation.split(",")[0].split()[0], None
                fields[flag] = text
            elif group is not None:
                groups[group].append(content)
            elif flag is not None:
                fields[flag].append(content)
    own = {f: HINT.sub("", " ".join(" ".join(parts).split())) for f, parts in fields.items()}
    return own, {g: " ".join(" ".join(d).split()) for g, d in groups.items()}


def problems(fields: dict[str, str], groups: dict[str, str]) -> list[str]:
    """Fields without text, and texts (of fields, of groups) that more than one shows."""
    found = [f"{flag}: no text" for flag, text in fields.items() if not text]
    for kind, texts in (("field", fields), ("group", groups)):
        counts = Counter(t for t in texts.values() if t)
        found += [f"{kind}s {', '.join(k for k, t in texts.items() if t == text)} share "
                  f"{text!r}" for text, n in counts.items() if n > 1]
    return found


COMMANDS = {"train_lm.py": lambda argv: load_script("train_lm").parse(argv),
            "generate.py": lambda argv: load_script("generate").main(argv),
            "glrnn.evaluate": evaluate_main, "glrnn.tokenizer_train": tokenizer_train_main,
            "glrnn.online.stream": stream_cli}


@pytest.mark.parametrize("name", COMMANDS)
def test_every_help_field_has_a_text_of_its_own(name, capsys, monkeypatch):
    fields, groups = parse_help(help_text(COMMANDS[name], capsys, monkeypatch))
    assert len(fields) >= {"train_lm.py": 150}.get(name, 5), sorted(fields)  # the parse works
    assert problems(fields, groups) == []


def test_the_check_sees_missing_and_shared_texts():
    """The parse on a made-up box: a field with nothing but its default, two that share."""
    lines = ["╭─ a options ──────────╮", "│ Group text.          │", "├──────────────────────┤",
             "│ --a.x INT    one (default: 1) │", "│ --a.y INT    one    │",
             "│              (default: 2)     │", "│ --a.z STR    (default: '') │",
             "╰──────────────────────╯"]
    fields, groups = parse_help(lines)
    assert fields == {"--a.x": "one", "--a.y": "one", "--a.z": ""}
    assert groups == {"a options": "Group text."}
    assert problems(fields, groups) == ["--a.z: no text", "fields --a.x, --a.y share 'one'"]
