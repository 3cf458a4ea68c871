"""Data-parallel and FSDP training on a mesh of 4 CPU devices computes what one device computes;
a checkpoint saved on 4 devices restores on 1 and the other way round.

XLA's device count is fixed when jax starts, so each check runs in a fresh Python process with
``--xla_force_host_platform_device_count``.
"""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from glrnn.mixers import MIXERS
from glrnn.train.sharding import PartitionSpec, param_spec

ROOT = Path(__file__).resolve().parent.parent

SETUP = """
import jax, jax.numpy as jnp, numpy as np
from glrnn.config import ModelConfig, OptimConfig
from glrnn.models import LanguageModel
from glrnn.params import init_params
from glrnn.train.lm_task import lm_loss
from glrnn.train.loop import make_train_step
from glrnn.train.optim import make_optimizer
from glrnn.train.sharding import *
from glrnn.runs.checkpoint import Checkpoints

model = LanguageModel(ModelConfig(vocab_size=16, d_model=8, d_state=4, n_layers=2,
                                  mlp_ratio=1.0, dropout=0.1))
params, roles = init_params(model, jax.random.key(0), jnp.zeros((1, 4), jnp.int32))
optimizer = make_optimizer(OptimConfig(lr=1e-2, warmup_steps=0), 10, roles)
opt_state = optimizer.init(params)
batch = np.asarray(jax.random.randint(jax.random.key(1), (8, 13), 0, 16)).astype(np.int32)
batch[:, 5] = 15
step = make_train_step(lm_loss(model, 15), optimizer)
key = jax.random.key(2)
"""


def run(code: str, devices: int) -> str:
    flags = f"{os.environ.get('XLA_FLAGS', '')} --xla_force_host_platform_device_count={devices}"
    env = {**os.environ, "XLA_FLAGS": flags.strip(),  # with the session's (tests/conftest.py)
           "PYTHONPATH": str(ROOT), "JAX_PLATFORMS": "cpu"}
    out = subprocess.run([sys.executable, "-c", SETUP + textwrap.dedent(code)], env=env,
                         capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr[-3000:]
    return out.stdout


def test_sharded_step_equals_single_device_step():
    run("""
        assert jax.device_count() == 4
        ref = step(params, opt_state, {}, jnp.asarray(batch), key)
        for fsdp in (1, 2):
            mesh = make_mesh(fsdp)
            p = place(params, state_shardings(params, mesh))
            o = place(opt_state, state_shardings(opt_state, mesh))
            b = shard_batch(batch, batch_sharding(mesh), len(batch))
            assert len(b.sharding.device_set) == 4 and b.addressable_shards[0].data.shape[0] == 2
            if fsdp == 2:
                kernel = p["backbone"]["blocks_0"]["channel_mixer"]["up"]["kernel"]
                assert "fsdp" in kernel.sharding.spec, kernel.sharding.spec
            out = step(p, o, {}, b, key)
            for x, y in zip(jax.tree.leaves(ref), jax.tree.leaves(out), strict=True):
                np.testing.assert_allclose(np.asarray(x), np.asarray(y), rtol=2e-5, atol=2e-6)
        print("ok")
        """, devices=4)


FAMILIES = """
from glrnn.config import AttentionConfig, GateLoopQKVConfig
from glrnn.mixers import MIXERS

mesh = make_mesh(2)  # 4 devices: the batch split in 2, each parameter in 2
for name in sorted(set(MIXERS) - {"lru"}):  # the LRU: the test above
    cfg = ModelConfig(vocab_size=16, d_model=8, d_state=4, n_layers=1, mlp_ratio=1.0,
                      mixer=name, attention=AttentionConfig(heads=2, max_len=16),
                      gateloop_qkv=GateLoopQKVConfig(heads=2))
    model = LanguageModel(cfg)
    params, roles = init_params(model, jax.random.key(0), jnp.zeros((1, 4), jnp.int32))
    grad = jax.jit(jax.value_and_grad(lm_loss(model, 15), has_aux=True))
    ref = grad(params, {}, jnp.asarray(batch), key)
    p = place(params, state_shardings(params, mesh))
    out = grad(p, {}, shard_batch(batch, batch_sharding(mesh), len(batch)), key)
    split = [x for x in jax.tree.leaves(p) if "fsdp" in x.sharding.spec]
    assert split, name  # some parameter really is split
    for x, y in zip(jax.tree.leaves(ref), jax.tree.leaves(out), strict=True):
        np.testing.assert_allclose(np.asarray(x), np.asarray(y), rtol=2e-5, atol=2e-6,
                                   err_msg=name)
    print(name, "ok")
"""


def test_every_mixer_family_is_sharded_as_on_one_device():
    """Every other registered mixer: the loss and gradients with the batch and the parameters
    split over 4 devices (fsdp 2) are those of one device (the optimizer's update is the
    LRU's test above; it depends on the gradients only)."""
    out = run(FAMILIES, devices=4)
    names = sorted(set(MIXERS) - {"lru"})
    assert out.split() == [word for name in names for word in (name, "ok")]


def test_checkpoint_moves_between_device_counts(tmp_path):
    """Saved on 4 devices (fsdp 2), restored on 1; saved there, restored on 4: three processes."""
    save = """
        mesh = make_mesh(FSDP)
        p = place(params, state_shardings(params, mesh))
        o = place(opt_state, state_shardings(opt_state, mesh))
        b = shard_batch(batch, batch_sharding(mesh), len(batch))
        p, o, _, _, _, _ = step(p, o, {}, b, key)
        ckpt = Checkpoints(SAVE)
        ckpt.save(1, p, o, {"step": 1})
        ckpt.close()
        np.save(SAVE + "/expected.npy", np.concatenate(
            [np.asarray(x).ravel() for x in jax.tree.leaves((p, o))]))
        """
    restore = """
        mesh = make_mesh(FSDP)
        p = place(params, state_shardings(params, mesh))
        o = place(opt_state, state_shardings(opt_state, mesh))
        ckpt = Checkpoints(RESTORE, writable=False)
        p, o, meta, _ = ckpt.restore(1, p, o)
        ckpt.close()
        assert meta["step"] == 1
        assert len(jax.tree.leaves(p)[0].sharding.device_set) == jax.device_count()
        got = np.concatenate([np.asarray(x).ravel() for x in jax.tree.leaves((p, o))])
        np.testing.assert_array_equal(got, np.load(RESTORE + "/expected.npy"))
        """
    on4, on1 = str(tmp_path / "from4"), str(tmp_path / "from1")
    steps = [(4, None, on4, save), (1, on4, on1, restore + save), (4, on1, None, restore)]
    for devices, restored, saved, code in steps:
        head = f"FSDP = {2 if devices == 4 else 1}\nRESTORE = {restored!r}\nSAVE = {saved!r}\n"
        run(head + textwrap.dedent(code), devices)


@pytest.mark.parametrize(("shape", "fsdp", "spec"), [
    ((8, 12), 4, PartitionSpec(None, "fsdp")), ((12, 8), 4, PartitionSpec("fsdp", None)),
    ((6,), 4, PartitionSpec()), ((), 2, PartitionSpec()), ((8, 12), 1, PartitionSpec()),
    ((10, 7), 2, PartitionSpec("fsdp", None))])
def test_fsdp_splits_the_largest_divisible_dimension(shape, fsdp, spec):
    assert param_spec(shape, fsdp) == spec
