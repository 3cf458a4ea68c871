"""Bytes per token of a tokenizer on a corpus: the whole corpus and the recipe's two splits.

    python bench/tokenizer_bytes.py                                    # the shipped BPE, stdlib
    python bench/tokenizer_bytes.py --tokenizer tokenizers/x.model --source some/folder

UTF-8 bytes of the documents over the tokens the tokenizer gives them (no BOS/EOS), for every
document and for the train and validation splits that the default data settings make
(``data.val_fraction`` 0.02 by a hash of the path, seed 0), with and without the test suites
for ``stdlib``.
"""

from __future__ import annotations

import argparse

from glrnn.config import DataConfig
from glrnn.data.text import Document, load_documents, split_documents
from glrnn.tokenizer import Tokenizer, from_name


def bytes_per_token(docs: list[Document], tokenizer: Tokenizer) -> tuple[int, int]:
    """(UTF-8 bytes, tokens) over ``docs``."""
    n_bytes = sum(len(d.text.encode()) for d in docs)
    return n_bytes, sum(len(tokenizer.encode(d.text)) for d in docs)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--tokenizer", default="tokenizers/stdlib-bpe-4k.model")
    parser.add_argument("--source", default="stdlib")
    args = parser.parse_args()
    tokenizer = from_name(args.tokenizer)
    data = DataConfig()
    print(f"{args.tokenizer} on {args.source}")
    print("| text | documents | MB | tokens | bytes per token |")
    print("|---|---:|---:|---:|---:|")
    for tests in ((False, True) if args.source == "stdlib" else (False,)):
        docs = load_documents(args.source, include_tests=tests)
        train, val = split_documents(docs, data.val_fraction, data.seed)
        label = " (with test suites)" if tests else ""
        for name, part in (("all", docs), ("train split", train), ("validation split", val)):
            n_bytes, n_tokens = bytes_per_token(part, tokenizer)
            print(f"| {name}{label} | {len(part):,} | {n_bytes / 1e6:.2f} | {n_tokens:,} | "
                  f"{n_bytes / n_tokens:.3f} |")


if __name__ == "__main__":
    main()
