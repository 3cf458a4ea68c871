"""Stream text from a trained run: ``python generate.py --run runs/latest --prompt "def "``.

``--save-state FILE`` stores the recurrent state after the generation and ``--load-state FILE``
continues from one (the prompt, if any, is read on top of it); ``--interactive`` reads prompts
line by line from standard input and keeps the state between them. ``--num-samples N`` draws N
continuations of the prompt at once (printed one after another). A model with a learned
position table refuses a prompt + --max-new-tokens that would reach past it, before generating
(in --interactive mode that line is skipped and the session goes on).

A continuous-input run (``model.input=continuous``) draws frames instead:
``python generate.py --run runs/latest --frames 200 --frames-out out.npy
[--prompt-frames prompt.npy]`` writes the generated frames ([frames, F], or [samples, frames, F]
with ``--num-samples``; in the data's own units, the prompt not included) and a picture of them
beside the file (.png). Without a prompt the first frame is drawn from the learned start vector.
``--temperature`` scales the mixture (0: the mean of the most likely component, every time).
"""

from __future__ import annotations

import sys
from collections.abc import Sequence

import tyro

from glrnn.generate_run import Args, generate


def main(argv: Sequence[str] | None = None) -> int:
    """Parse the command line and generate (glrnn/generate_run.py); the exit status."""
    return generate(tyro.cli(Args, args=sys.argv[1:] if argv is None else argv,
                             description=__doc__))


if __name__ == "__main__":
    sys.exit(main())
