"""``--help`` tells the truth: every field of every command shows a text of its own (tyro takes
it from the comment beside or above the field, and a comment above one field also lands on the
next field when nothing separates them), and every group of fields its own description."""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Callable, Sequence

import pytest
from tiny_lm import load_script

from glrnn.convert.__main__ import COMMANDS as CONVERT_COMMANDS
from glrnn.convert.__main__ import main as convert_main
from glrnn.evaluate import main as evaluate_main
from glrnn.make_frames import main as make_frames_main
from glrnn.online.stream import cli as stream_cli
from glrnn.tokenizer_train import main as tokenizer_train_main

ANSI = re.compile(r"\x1b\[[0-9;]*m")
HEADER = re.compile(r"^(?:╭─ )?((?:\S+ )?options)(?: ─+╮)?$")
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


def content(line: str) -> tuple[int, str]:
    """(indentation, text) of a help line inside its box (tyro draws boxes with │ and ╭╮╰╯
    on a terminal, with spaces and dashes where its output is captured)."""
    line = line.rstrip().rstrip("│").rstrip()
    line = line[1:] if line.startswith("│") else line
    return len(line) - len(line.lstrip()), line.strip()


def parse_help(lines: list[str]) -> tuple[dict[str, str], dict[str, str]]:
    """({flag: its own text, the default hint removed}, {group: its description}) from tyro's
    help: a group opens with a header (``╭─ model options ─╮`` or `` model options``), its
    description (if any) runs to a rule of dashes; each field starts at the indentation of
    ``-h, --help`` with ``--flag METAVAR``, its text after two or more spaces or on the
    following, deeper indented lines."""
    fields: dict[str, list[str]] = {}
    groups: dict[str, list[str]] = {}
    flag = group = field_indent = None
    for line in lines:
        indent, text = content(line)
        header = HEADER.match(text)
        if header:
            group, flag = header.group(1), None
            groups[group] = []
        elif text.startswith("-h, --help"):
            field_indent, flag, group = indent, None, None
        elif text.startswith("╰"):
            flag = group = None
        elif text and set(text) <= set("-─"):  # a rule: under a header, or a description
            group = None if group is not None and groups[group] else group
        elif text.startswith("--") and indent == field_indent:
            invocation, *own = re.split(r"\s{2,}", text, maxsplit=1)
            flag, group = invocation.split(",")[0].split()[0], None
            fields[flag] = own
        elif text and group is not None:
            groups[group].append(text)
        elif text and flag is not None:
            fields[flag].append(text)
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
            "glrnn.online.stream": stream_cli, "glrnn.make_frames": make_frames_main,
            **{f"glrnn.convert {sub}": lambda argv, sub=sub: convert_main([sub, *argv])
               for sub in CONVERT_COMMANDS}}


@pytest.mark.parametrize("name", COMMANDS)
def test_every_help_field_has_a_text_of_its_own(name, capsys, monkeypatch):
    fields, groups = parse_help(help_text(COMMANDS[name], capsys, monkeypatch))
    least = {"train_lm.py": 100}.get(name, 2 if name.startswith("glrnn.convert") else 5)
    assert len(fields) >= least, sorted(fields)  # the parse works
    assert problems(fields, groups) == []


def test_the_check_sees_missing_and_shared_texts():
    """The parse on a made-up box: a field with nothing but its default, two that share."""
    boxes = ["╭─ options ────────────╮", "│ -h, --help           │", "│     show this help   │",
             "╰──────────────────────╯",
             "╭─ a options ──────────╮", "│ Group text.          │", "│ ──────────────────── │",
             "│ --a.x INT    one (default: 1) │", "│ --a.y INT    one    │",
             "│              (default: 2)     │", "│ --a.z STR    (default: '') │",
             "╰──────────────────────╯"]
    plain = [" options", " -----", "  -h, --help", "        show this help", "",
             " a options", " -----", "  Group text.", "  -----",
             "  --a.x INT    one (default: 1)", "  --a.y INT    one", "               (default: 2)",
             "  --a.z STR    (default: '')"]
    for lines in (boxes, plain):
        fields, groups = parse_help(lines)
        assert fields == {"--a.x": "one", "--a.y": "one", "--a.z": ""}
        assert groups == {"options": "", "a options": "Group text."}
        assert problems(fields, groups) == ["--a.z: no text", "fields --a.x, --a.y share 'one'"]
