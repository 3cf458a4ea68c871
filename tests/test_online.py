"""The online learning rules against backpropagation through time, with real gradients: random
targets the model cannot fit at initialisation (a loss well above zero), packed documents,
float64 where exactness is claimed; a 3-step LRU case with every sensitivity written out."""

from __future__ import annotations

import functools

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from glrnn.config import ConfigError, ModelConfig
from glrnn.mixers.dense_rnn import DenseRNN
from glrnn.mixers.diag_rnn import DiagRNN
from glrnn.mixers.gateloop import GateLoop
from glrnn.mixers.gru import GRU
from glrnn.mixers.lru import LRU
from glrnn.models import LanguageModel
from glrnn.online import check_rule, gradient_function
from glrnn.online.cells import CELLS
from glrnn.online.grad import init_state, online_step
from glrnn.params import split_roles
from glrnn.train.lm_task import lm_gradient, lm_loss

B, L, H, N = 2, 7, 3, 4


def squared_error(out: jax.Array, target: jax.Array) -> tuple[jax.Array, jax.Array]:
    """½‖y_t − target_t‖² summed over the batch; one count per example."""
    return 0.5 * jnp.sum((out - target) ** 2), jnp.asarray(out.shape[0], out.dtype)


def data(length: int = L, dtype: jnp.dtype = jnp.float64):
    x = jax.random.normal(jax.random.key(1), (B, length, H), dtype)
    y = jax.random.normal(jax.random.key(2), (B, length, H), dtype)
    resets = jnp.zeros((B, length), bool).at[0, 3].set(True)  # row 0: a second document
    return x, y, resets


def init_params(module, x: jax.Array) -> dict:
    """Fresh parameters (a jitted init: compiling it is cheaper than running it op by op)."""
    return split_roles(jax.jit(module.init)(jax.random.key(0), x)["params"])[0]


def f64_params(module, x) -> dict:
    return jax.tree.map(lambda p: p.astype(jnp.float64), init_params(module, x))


@functools.cache
def compiled(module, rule: str):
    """One jitted gradient function per (module, rule): compiled once for all the params."""
    return jax.jit(gradient_function(rule, module, squared_error))


@functools.cache
def grads(module, rule: str, params_fn=None):
    """(loss, grads) of ``module`` by ``rule`` on ``data()`` in float64."""
    x, y, resets = data()
    params = f64_params(module, x) if params_fn is None else params_fn(f64_params(module, x))
    return compiled(module, rule)(params, x, y, resets)


def rel_err(a, b) -> dict[str, float]:
    return {k: float(jnp.abs(a[k] - b[k]).max() / jnp.abs(b[k]).max()) for k in b}


DIAGONAL = {"lru": LRU(d_model=H, d_state=N, r_min=0.5), "gateloop": GateLoop(d_model=H, d_state=N),
            "diag_rnn": DiagRNN(d_model=H, d_state=N)}


@pytest.mark.parametrize("name", DIAGONAL)
def test_online_full_equals_bptt_for_one_diagonal_layer(name):
    with jax.enable_x64(True):
        loss, exact = grads(DIAGONAL[name], "bptt")
        loss_online, online = grads(DIAGONAL[name], "online_full")
    assert float(loss) > 0.5  # not a degenerate loss
    assert abs(float(loss_online - loss)) < 1e-12
    assert max(rel_err(online, exact).values()) < 1e-6


def test_the_baselines_miss_the_recurrent_credit():
    """The comparisons above are not vacuous: one step of credit, or none, is far off."""
    with jax.enable_x64(True):
        _, exact = grads(DIAGONAL["lru"], "bptt")
        _, truncated = grads(DIAGONAL["lru"], "online_1truncated")
        _, spatial = grads(DIAGONAL["lru"], "online_spatial")
    assert rel_err(truncated, exact)["nu_log"] > 0.05
    # the spatial rule gives λ nothing; B, C, D still learn from the present step
    assert not np.any(spatial["nu_log"]) and not np.any(spatial["theta_log"])
    np.testing.assert_allclose(spatial["C_re"], exact["C_re"], rtol=1e-10)


def three_step_lru():
    """An LRU with N = 2 states, H = 1, one example, 3 steps, and its parameters as numpy."""
    layer = LRU(d_model=1, d_state=2, r_min=0.6, r_max=0.9, max_phase=1.0)
    x = jnp.array([[[0.7], [-1.2], [0.4]]])
    target = jnp.array([[[0.3], [0.5], [-0.8]]])
    params = f64_params(layer, x)
    return layer, params, x, target, jax.tree.map(np.asarray, params)


def test_three_steps_by_hand():
    """h_t = λ h_{t−1} + γ B x_t, y_t = Re(C h_t) + D x_t, l_t = ½ (y_t − y*_t)²: every
    sensitivity of the three steps, then the gradient, written out."""
    with jax.enable_x64(True):
        layer, params, x, target, p = three_step_lru()
        lam = np.exp(-np.exp(p["nu_log"]) + 1j * np.exp(p["theta_log"]))
        gamma = np.exp(p["gamma_log"])
        b = p["B_re"][:, 0] + 1j * p["B_im"][:, 0]  # [N] (H = 1)
        c = p["C_re"][0] + 1j * p["C_im"][0]
        x1, x2, x3 = np.asarray(x[0, :, 0])
        # states
        h1 = gamma * b * x1
        h2 = lam * h1 + gamma * b * x2
        h3 = lam * h2 + gamma * b * x3
        # ∂h_t/∂λ (holomorphic): e_t = λ e_{t−1} + h_{t−1}
        e_lam = [np.zeros(2), h1, lam * h1 + h2]
        # ∂h_t/∂γ: λ e_{t−1} + B x_t
        e_gamma = [b * x1, lam * b * x1 + b * x2, lam**2 * b * x1 + lam * b * x2 + b * x3]
        # ∂h_t[n]/∂B_re[n] (H = 1): λ e_{t−1} + γ x_t; ∂/∂B_im is i times it
        e_b = [gamma * x1, lam * gamma * x1 + gamma * x2,
               lam**2 * gamma * x1 + lam * gamma * x2 + gamma * x3]
        # errors: δ_t = ∂l_t/∂Re h − i ∂l_t/∂Im h = (y_t − y*_t) C (JAX's convention)
        ys = [float(np.real(c @ h)) + p["D"][0] * xt for h, xt in ((h1, x1), (h2, x2), (h3, x3))]
        deltas = [(y - float(target[0, t, 0])) * c for t, y in enumerate(ys)]
        # parameters through λ = exp(−e^ν + i e^θ): ∂λ/∂ν_log = −λ e^ν, ∂λ/∂θ_log = iλ e^θ
        dlam_dnu, dlam_dtheta = -lam * np.exp(p["nu_log"]), 1j * lam * np.exp(p["theta_log"])
        by_hand = {
            "nu_log": sum(np.real(d * e * dlam_dnu) for d, e in zip(deltas, e_lam, strict=True)),
            "theta_log": sum(np.real(d * e * dlam_dtheta)
                             for d, e in zip(deltas, e_lam, strict=True)),
            "gamma_log": sum(np.real(d * e * gamma) for d, e in zip(deltas, e_gamma, strict=True)),
            "B_re": sum(np.real(d * e) for d, e in zip(deltas, e_b, strict=True))[:, None],
            "B_im": sum(np.real(d * 1j * e) for d, e in zip(deltas, e_b, strict=True))[:, None]}
        loss_hand = sum(0.5 * (y - float(target[0, t, 0])) ** 2 for t, y in enumerate(ys)) / 3

        # the sensitivities the rule carries after each step are these ones
        state, layers = init_state("online_full", layer, params, x[:, 0])
        step = jax.jit(functools.partial(online_step, "online_full", layer, squared_error,
                                         layers))
        online = jax.tree.map(jnp.zeros_like, params)
        for t in range(3):
            _, _, g, state = step(params, state, x[:, t], target[:, t])
            online = jax.tree.map(jnp.add, online, g)
            traces = state.traces[""]
            np.testing.assert_allclose(traces["nu_log"][0], e_lam[t] * dlam_dnu, atol=1e-12)
            np.testing.assert_allclose(traces["theta_log"][0], e_lam[t] * dlam_dtheta,
                                       atol=1e-12)
            np.testing.assert_allclose(traces["gamma_log"][0], e_gamma[t] * gamma, atol=1e-12)
            np.testing.assert_allclose(traces["B_re"][0, :, 0], e_b[t], atol=1e-12)
            np.testing.assert_allclose(traces["B_im"][0, :, 0], 1j * e_b[t], atol=1e-12)
        # the gradient: the rule's sum over the steps, and BPTT's mean over them
        loss, exact = jax.jit(gradient_function("bptt", layer, squared_error))(params, x, target)
        assert abs(float(loss) - loss_hand) < 1e-12
        for name, value in by_hand.items():
            np.testing.assert_allclose(online[name], value, rtol=1e-10, atol=1e-14)
            np.testing.assert_allclose(exact[name], value / 3, rtol=1e-10, atol=1e-14)


BIASES = ("b", "b_x", "b_hn")  # the dense RNN's and the GRU's; they start at zero


def random_biases(params: dict) -> dict:
    """``params`` with random nonzero biases, so that a bias entering with the wrong sign (or
    not at all) changes the gradients the rules are compared on."""
    keys = iter(jax.random.split(jax.random.key(7), len(BIASES)))
    return {k: 0.5 * jax.random.normal(next(keys), v.shape, v.dtype) if k in BIASES else v
            for k, v in params.items()}


def diagonal_recurrence(name: str, params: dict) -> dict:
    """The dense RNN's A, or each of the GRU's recurrent blocks, made diagonal (and every bias
    random)."""
    params = random_biases(params)
    if name == "dense_rnn":
        return {**params, "A": jnp.diag(jnp.diagonal(params["A"]))}
    blocks = jnp.split(params["w_h"], 3, axis=1)
    return {**params, "w_h": jnp.concatenate([jnp.diag(jnp.diagonal(w)) for w in blocks], 1)}


DENSE = {"dense_rnn": DenseRNN(d_model=H, d_state=N, activation="tanh", a_init="orthogonal"),
         "gru": GRU(d_model=H, d_state=N)}


@pytest.mark.parametrize("name", DENSE)
def test_snap1_equals_rtrl_where_the_jacobian_is_diagonal(name):
    make_diagonal = functools.partial(diagonal_recurrence, name)
    with jax.enable_x64(True):
        _, exact = grads(DENSE[name], "bptt", make_diagonal)
        _, snap = grads(DENSE[name], "online_snap1", make_diagonal)
    assert max(rel_err(snap, exact).values()) < 1e-6


def test_snap1_is_an_approximation_for_a_full_recurrent_matrix():
    with jax.enable_x64(True):
        _, exact = grads(DENSE["dense_rnn"], "bptt", random_biases)
        _, snap = grads(DENSE["dense_rnn"], "online_snap1", random_biases)
    assert rel_err(snap, exact)["A"] > 0.05


@pytest.mark.parametrize("name", DENSE)
def test_snap1_keeps_the_diagonal_of_the_true_jacobian(name):
    module, (_, cell) = DENSE[name], CELLS[name]
    x, _, _ = data(dtype=jnp.float32)
    params = random_biases(init_params(module, x))
    bound = module.bind({"params": params})

    @jax.jit
    def both(h, x_t):
        def one(hb, xb):  # the full Jacobian of one example's step
            return jax.jacfwd(lambda v: cell.transition(bound, params, v[None], xb[None],
                                                        False)[0])(hb)

        return cell.diag_jacobian(bound, params, h, x_t), jax.vmap(one)(h, x_t)

    jac, full = both(jax.random.normal(jax.random.key(4), (B, N)), x[:, 0])
    np.testing.assert_allclose(jac, jnp.diagonal(full, axis1=1, axis2=2), rtol=1e-5, atol=1e-6)


def cosine(a, b) -> float:
    va, vb = (jnp.concatenate([v.ravel() for v in jax.tree.leaves(t)]) for t in (a, b))
    return float(va @ vb / jnp.linalg.norm(va) / jnp.linalg.norm(vb))


def test_multilayer_lm_top_layer_exact_lower_layers_approximate():
    """A 2-layer pre-norm LM on a packed batch (documents opening mid-row), the language-model
    task's gradients by online_full against its BPTT loss: exact at and above the top
    recurrence, approximate below it (cosines printed; docs/RESULTS.md)."""
    model, bos = LanguageModel(ModelConfig(vocab_size=11, d_model=8, d_state=6, n_layers=2,
                                           tie_embeddings=False, channel_mixer="mlp",
                                           mlp_ratio=1.0)), 10
    batch = jax.random.randint(jax.random.key(5), (B, 13), 0, 10)
    batch = batch.at[:, 0].set(bos).at[0, 5].set(bos).at[1, 9].set(bos)
    params, key = init_params(model, batch[:, :-1]), jax.random.key(0)
    grad = jax.jit(lm_gradient("online_full", model, bos))
    (loss, _), online = grad(params, {}, batch, key)
    (exact_loss, _), exact = jax.jit(jax.value_and_grad(lm_loss(model, bos), has_aux=True))(
        params, {}, batch, key)
    assert abs(float(loss - exact_loss)) < 1e-5
    top = "blocks_1"
    # everything at or above the top recurrence: its mixer, channel mixer, norms, the head
    for part in (lambda g: g["backbone"][top]["mixer"], lambda g: g["backbone"][top]["norm2"],
                 lambda g: g["backbone"][top]["channel_mixer"], lambda g: g["norm"],
                 lambda g: g["head"]):
        for a, e in zip(jax.tree.leaves(part(online)), jax.tree.leaves(part(exact)),
                        strict=True):
            np.testing.assert_allclose(a, e, rtol=2e-4, atol=1e-6)
    # below it: the lower block, the top block's input norm, the embedding
    report = {"blocks_0": cosine(online["backbone"]["blocks_0"], exact["backbone"]["blocks_0"]),
              "blocks_1.norm1": cosine(online["backbone"][top]["norm1"],
                                       exact["backbone"][top]["norm1"]),
              "embed": cosine(online["embed"], exact["embed"])}
    print("cosine(online_full, bptt) of the lower layers:", report)
    assert all(0 < c < 1 - 1e-6 for c in report.values())
    # the documents matter: read as one document, the top layer's gradient changes
    _, one_document = grad(params, {}, batch.at[0, 5].set(3).at[1, 9].set(3), key)
    assert not np.allclose(one_document["backbone"][top]["mixer"]["nu_log"],
                           exact["backbone"][top]["mixer"]["nu_log"], rtol=1e-2)


@pytest.mark.parametrize(("rule", "mixer"), [("online_snap1", "lru"), ("online_full", "dense_rnn"),
                                             ("online_full", "gru"), ("online_snap1", "gateloop")])
def test_rules_that_do_not_apply_are_refused_naming_the_valid_combinations(rule, mixer):
    with pytest.raises(ConfigError, match=rf"^train.rule='{rule}': does not apply to "
                                          rf"model.mixer='{mixer}'; valid combinations: bptt "
                                          r"with every mixer; online_full with diag_rnn, "
                                          r"gateloop, lru; online_snap1 with dense_rnn, gru"):
        check_rule(rule, mixer)
    check_rule("bptt", mixer)
    check_rule("online_1truncated", mixer)
    with pytest.raises(ConfigError, match=r"^train.rule='rtrl': expected one of"):
        check_rule("rtrl", mixer)


def test_online_memory_does_not_grow_with_the_length():
    """XLA's temporaries for the whole gradient: the same at 16 times the length (BPTT's grow
    with it: bench/online.py)."""
    layer = LRU(d_model=H, d_state=N)

    def temp_bytes(rule: str, length: int) -> int:
        x = jnp.zeros((B, length, H))
        params = init_params(layer, x[:, :2])
        fn = jax.jit(gradient_function(rule, layer, squared_error))
        return fn.lower(params, x, x).compile().memory_analysis().temp_size_in_bytes
    short, long = (temp_bytes("online_full", n) for n in (64, 1024))
    assert long == short
