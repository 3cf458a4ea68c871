"""Train a tokenizer on any text source the data pipeline reads, and save it under tokenizers/.

    python -m glrnn.tokenizer_train --source stdlib --kind bpe --vocab-size 4096 \\
        --out tokenizers/stdlib-bpe-4k.model
    python -m glrnn.tokenizer_train --source input.txt --kind char --out tokenizers/shakespeare.json

``bpe`` and ``unigram`` train SentencePiece with settings for code and prose alike: no text
normalisation (what goes in comes out), no dummy-prefix space, whitespace-only pieces allowed
(indentation), digits split, newline as a piece of its own, byte fallback (no text is ever
unknown), ids 0-3 = UNK, BOS, EOS, PAD. Documents are fed in chunks of lines so pieces may span
line ends. ``char`` writes the alphabet of the text (plus BOS/EOS/PAD/UNK at load time).
"""

from __future__ import annotations

import sys
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import tyro

from glrnn.cli import USER_ERRORS, report
from glrnn.config import ENCODING_ERRORS, check, check_choice
from glrnn.data.text import load_documents
from glrnn.files import output_file
from glrnn.tokenizer import from_name, save_char_vocabulary

KINDS = ("bpe", "unigram", "char")


@dataclass(frozen=True)
class Args:
    out: str  # tokenizers/NAME.model (bpe, unigram) or tokenizers/NAME.json (char)
    source: str = "stdlib"  # "stdlib", a text file, a folder or a glob
    kind: str = "bpe"  # bpe | unigram | char
    vocab_size: int = 4096  # SentencePiece only
    lines_per_piece: int = 16  # lines per training "sentence"
    max_sentences: int = 300_000  # SentencePiece samples at most this many
    # text files that are not UTF-8: "strict" refuses them (naming the file and the first bad
    # byte), "replace" reads U+FFFD for each bad byte
    encoding_errors: str = "strict"


def chunks(texts: list[str], lines: int) -> Iterator[str]:
    """Each text cut into pieces of ``lines`` lines (newlines kept)."""
    for text in texts:
        rows = text.splitlines(keepends=True)
        for i in range(0, len(rows), lines):
            yield "".join(rows[i:i + lines])


def train_sentencepiece(texts: list[str], out: Path, kind: str, vocab_size: int,
                        lines: int = 16, max_sentences: int = 300_000) -> Path:
    """Train and write ``out`` (a ``.model``; SentencePiece also writes the ``.vocab``)."""
    import sentencepiece as spm

    out.parent.mkdir(parents=True, exist_ok=True)
    spm.SentencePieceTrainer.train(
        sentence_iterator=chunks(texts, lines), model_prefix=str(out.with_suffix("")),
        model_type=kind, vocab_size=vocab_size, character_coverage=1.0,
        normalization_rule_name="identity", add_dummy_prefix=False,
        remove_extra_whitespaces=False, allow_whitespace_only_pieces=True, split_digits=True,
        byte_fallback=True, user_defined_symbols=["\n"], max_sentence_length=1 << 16,
        input_sentence_size=max_sentences, shuffle_input_sentence=True,
        unk_id=0, bos_id=1, eos_id=2, pad_id=3, num_threads=2, minloglevel=2)
    return out


def main(argv: Sequence[str] | None = None) -> int:
    args = tyro.cli(Args, args=sys.argv[1:] if argv is None else argv, description=__doc__)
    try:
        check_choice("--kind", args.kind, KINDS)
        check_choice("--encoding-errors", args.encoding_errors, ENCODING_ERRORS)
        out = output_file(args.out, "--out")
        check(out.suffix == (".json" if args.kind == "char" else ".model"), "--out", args.out,
              "a .json file for --kind char, a .model file otherwise")
        docs = load_documents(args.source, encoding_errors=args.encoding_errors)
        texts = [doc.text for doc in docs]
        check(any(texts), "--source", args.source, "some text (every document is empty)")
        if args.kind == "char":
            save_char_vocabulary("".join(texts), out)
        else:
            train_sentencepiece(texts, out, args.kind, args.vocab_size, args.lines_per_piece,
                                args.max_sentences)
        tokenizer = from_name(str(out))
    except (*USER_ERRORS, RuntimeError) as e:  # RuntimeError: SentencePiece
        return report(e)
    print(f"{args.kind} tokenizer, vocabulary {tokenizer.vocab_size}, written to {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
