"""How close each online rule's gradient is to BPTT's, layer by layer, on copy-task batches.

    python bench/online_alignment.py [--layers 4] [--width 64] [--batches 4]
                                     [--rules online_full online_1truncated online_spatial]

A copy-online classifier (recipe ``copy-online`` at width ``--width``, ``--layers`` LRU blocks,
no dropout) at initialisation; for each of ``--batches`` training batches the gradient of the
task's loss by each rule (glrnn/train/online.py, the loop's call) and by BPTT. Prints the mean
cosine similarity to BPTT of: each block's parameters, the top block's mixer alone, and the
encoder. online_full is exact at and above the top recurrence (cosine 1 up to float32).
"""

from __future__ import annotations

import argparse
from dataclasses import replace

import jax
import jax.numpy as jnp
import numpy as np
from timing import machine

from glrnn.data.tasks import load_task
from glrnn.tokenizer import from_name
from glrnn.train.classify_task import ClassifyTask
from glrnn.train.online import task_gradient
from glrnn.train.recipes import load_recipe


def cosine(a, b) -> float:
    va, vb = (jnp.concatenate([v.ravel() for v in jax.tree.leaves(t)]) for t in (a, b))
    return float(va @ vb / (jnp.linalg.norm(va) * jnp.linalg.norm(vb)))


def parts(grads: dict, layers: int) -> dict[str, dict]:
    """The parameter groups the table reports, by name."""
    blocks = grads["backbone"]
    out = {f"block {i}": blocks[f"blocks_{i}"] for i in range(layers)}
    out["top mixer"] = blocks[f"blocks_{layers - 1}"]["mixer"]
    out["encoder"] = grads["encoder"]
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--layers", type=int, default=4)
    parser.add_argument("--width", type=int, default=64)
    parser.add_argument("--batches", type=int, default=4)
    parser.add_argument("--rules", nargs="+",
                        default=["online_full", "online_1truncated", "online_spatial"])
    args = parser.parse_args()
    base = load_recipe("copy-online")
    base = replace(base, model=replace(base.model, d_model=args.width, d_state=args.width,
                                       n_layers=args.layers, dropout=0.0),
                   data=replace(base.data, batch_size=32))
    task = ClassifyTask(base, load_task(base.task), from_name(base.data.tokenizer))
    params, _, state = task.init_variables(jax.random.key(0))
    bptt = jax.jit(jax.value_and_grad(task.loss, has_aux=True))
    batches = [{k: jnp.asarray(v) for k, v in task.train_batch(step).items()}
               for step in range(1, args.batches + 1)]
    exact = [bptt(params, state, b, jax.random.key(0))[1] for b in batches]
    print(f"# {machine()}; copy-online, {args.layers} LRU blocks of width {args.width}, "
          f"at initialisation, mean over {args.batches} batches of 32")
    names = list(parts(exact[0], args.layers))
    print("| rule | " + " | ".join(names) + " |")
    print("|---" * (len(names) + 1) + "|")
    for rule in args.rules:
        cfg = replace(base, train=replace(base.train, rule=rule))
        grad = jax.jit(task_gradient(cfg, task))
        sims = {name: [] for name in names}
        for b, e in zip(batches, exact, strict=True):
            g = grad(params, state, b, jax.random.key(0))[1]
            for name, (pg, pe) in zip(names, zip(parts(g, args.layers).values(),
                                                 parts(e, args.layers).values(), strict=True),
                                      strict=True):
                sims[name].append(cosine(pg, pe))
        print(f"| {rule} | " + " | ".join(f"{np.mean(v):.4f}" for v in sims.values()) + " |",
              flush=True)


if __name__ == "__main__":
    main()
