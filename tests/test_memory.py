"""Generated code frees each batch-sized array after its last read, so one call holds little more than
what backprop needs at once: the ReLU outputs and two layers' cotangents, as torch.autograd does."""

from __future__ import annotations

import platform
import subprocess
import sys
import tracemalloc

import numpy as np
import pytest

import symprop as S

BATCH, WIDTHS = 1024, (784, 256, 128, 10)


def mlp():
    return S.Model(S.Sequential(S.Linear(784, 256), S.ReLU(), S.Linear(256, 128), S.ReLU(), S.Linear(128, 10)),
                   S.CrossEntropyLoss(), name="mlp_memory", inputs=784)


def test_numpy_peak_memory_is_what_backprop_must_hold(build):
    numpy_module, _ = build(mlp())
    rng = np.random.default_rng(0)
    params = {k: rng.standard_normal(v.shape).astype(np.float32) * 0.05
              for k, v in numpy_module.init_params().items()}
    x = rng.standard_normal((BATCH, 784)).astype(np.float32)
    t = rng.integers(0, 10, BATCH)
    numpy_module.loss_and_gradients(params, x, t)
    tracemalloc.start()
    numpy_module.loss_and_gradients(params, x, t)
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    # Needed at once, at the first layer's cotangent: h1 (relu output), dz2, dz0, h1's bool mask, and the
    # gradients. Keeping every forward and backward array to the end, as the code did before, is 1.8x that.
    row = 4 * BATCH
    needed = row * (256 + 128 + 256) + BATCH * 256 + 4 * (784 * 256 + 256 * 128 + 128 * 10 + 256 + 128 + 10)
    assert peak <= 1.15 * needed, (peak, needed)


def test_backward_reads_relu_outputs_not_their_inputs(build):
    numpy_module, torch_module = build(mlp())
    import inspect

    numpy_code = inspect.getsource(numpy_module.loss_and_gradients)
    torch_code = inspect.getsource(torch_module.loss_and_gradients)
    assert "dz0 *= h1 > 0" in numpy_code and "del z0" in numpy_code
    # h1 ≥ 0, and torch's bool masks are slow on CPU; h1 is read for the last time there, so its sign goes into it
    assert "dz0 *= h1.sign_()" in torch_code


def test_a_float32_token_model_stays_float32_throughout():
    """The ignore_index mask is made in the arrays' dtype: np.select of ints with a nan default would be float64,
    and would turn every gradient after it float64 (twice the memory, and not the dtype asked for)."""
    import importlib.util

    from conftest import GOLDEN

    spec = importlib.util.spec_from_file_location("char_lm_numpy", GOLDEN / "char_lm_numpy.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    params = module.init_params(0, dtype=np.float32)
    rng = np.random.default_rng(0)
    x, t = rng.integers(0, 71, (2, 32)), rng.integers(0, 71, (2, 32))
    t[0, :5] = -100
    _, gradients = module.loss_and_gradients(params, x, t)
    assert {str(g.dtype) for g in gradients.values()} == {"float32"}


def test_softmax_exponentials_and_bias_sums_do_not_outlive_their_use(build):
    """In an encoder layer's backward pass, e = exp(scores − m) is read as a·s (a and s are kept anyway), so e is
    freed after the forward pass; and each bias's gradient is summed as soon as its δ exists, so δ is freed there."""
    import inspect

    model = S.Model(S.Sequential(S.TransformerEncoderLayer(16, 2, 32), S.MeanPool(), S.Linear(16, 3)),
                    S.CrossEntropyLoss(), name="encoder_memory", inputs=16, sequence=6)
    numpy_module, _ = build(model)
    code = inspect.getsource(numpy_module.loss_and_gradients).splitlines()
    freed = next(i for i, line in enumerate(code) if line.strip().startswith("del ") and "e_a0" in line)
    first_backward = next(i for i, line in enumerate(code) if line.strip().startswith("dz"))
    assert freed < first_backward
    bias = next(i for i, line in enumerate(code) if line.strip().startswith("db1_0 = "))
    assert any("del df0" in line for line in code[bias:bias + 6])


def encoder_model():
    return S.Model(S.Sequential(S.TransformerEncoderLayer(16, 2, 32), S.MeanPool(), S.Linear(16, 3)),
                   S.CrossEntropyLoss(), name="encoder_fused", inputs=16, sequence=6)


def test_softmax_backward_reads_the_probabilities_only(build):
    """Σ_k(a·da·s)/s: s is constant along k, so it moves out of the sum and cancels; the backward pass reads
    a alone (the textbook a ⊙ (da − Σ a·da)), and s is freed with the forward pass."""
    import inspect

    numpy_module, _ = build(encoder_model())
    code = [line.strip() for line in inspect.getsource(numpy_module.loss_and_gradients).splitlines()]
    assert 'sum_ds_a0 = np.einsum("ijkl,ijkl->ijk", a0, da0)[..., None]' in code
    freed = next(i for i, line in enumerate(code) if line.startswith("del ") and "s_a0" in line.split())
    assert freed < next(i for i, line in enumerate(code) if line.startswith("dz"))


def test_torch_prints_one_softmax_call_where_the_graph_builds_one(build):
    """max, shift, exp, sum and divide are one torch.softmax (attention) or torch.log_softmax (cross-entropy)
    call, and what the backward pass reads is the call's result; NumPy keeps the steps."""
    import inspect

    numpy_module, torch_module = build(mlp())
    code = inspect.getsource(torch_module.loss_and_gradients)
    assert "logp = torch.log_softmax(z4, dim=-1, out=z4)" in code and "amax" not in code
    assert "np.max(" in inspect.getsource(numpy_module.loss_and_gradients)
    _, torch_module = build(encoder_model())
    code = inspect.getsource(torch_module.loss_and_gradients)
    assert "a0 = torch.softmax(scores0, dim=-1, out=scores0)" in code and "amax" not in code


def test_torch_computes_a_layer_norms_forward_steps_in_one_call(build):
    """Σx, x − μ, Σ(x − μ)², σ² + ε, σ⁻¹ and x̂ are one torch.native_layer_norm, whose x̂ and σ⁻¹ are what the
    backward pass reads (never x − μ); NumPy keeps the steps. Both agree with autograd (test_from_torch)."""
    import inspect

    numpy_module, torch_module = build(encoder_model())
    code = inspect.getsource(torch_module.loss_and_gradients)
    assert code.count("torch.native_layer_norm(") == 2 and "xc_" not in code
    assert "xhat_n1_0 = ln_n1_0[0]" in code and "rstd_n1_0 = ln_n1_0[2]" in code
    numpy_code = inspect.getsource(numpy_module.loss_and_gradients)
    assert "native_layer_norm" not in numpy_code and "xc_n1_0" in numpy_code
    # where only the affine map reads x̂ (forward, for inference), the whole layer norm is F.layer_norm
    forward = inspect.getsource(torch_module.forward)
    assert forward.count("torch.nn.functional.layer_norm(") == 2 and "native_layer_norm" not in forward


def test_torch_adds_a_product_of_arrays_in_one_kernel():
    """δ += c·a·b is one addcmul_, δ += c·a an add_: no array for the product (the GPT's layer norms, whose δ adds
    x̂ times its row's Σ; the golden record is the code as derived). Under a residual, the layer norm's δ of its input,
    σ⁻¹·(x̄ − x̂Σ(x̄x̂)/E) − σ⁻¹Σx̄/E, is computed unscaled in x̄'s array and added times σ⁻¹: three passes."""
    from pathlib import Path

    code = (Path(__file__).parent / "golden" / "gpt_torch.py").read_text()
    assert "    dxc_h_unscaled = dxhat_h\n    dxc_h_unscaled.add_(sum_dsum_h, alpha=-0.03125)\n" \
        "    dxc_h_unscaled.addcmul_(sum_drstd_h, xhat_h, value=-0.03125)\n" in code
    assert "    dres = dres_1\n    dres.addcmul_(rstd_h, dxc_h_unscaled)\n" in code


def test_attentions_scores_and_the_cotangents_of_its_heads_make_no_array_more():
    """The GPT's scaled scores, c·(q @ kᵀ) + mask, are the product's array scaled and masked in place; the cotangents
    of q, k and v, each (batch, head, position, width) flattened into (batch, position, features), are joined along a
    new axis and flattened after: one copy each, by the join (the golden record is the code as derived)."""
    from pathlib import Path

    code = (Path(__file__).parent / "golden" / "gpt_torch.py").read_text()
    assert "    tmp0 = rs_1_c @ tr_c.mT\n    tmp0 *= 0.25\n    tmp0 += mask\n" in code
    assert "    dmm_parts = torch.cat([dsl, dsl_1, dsl_2], dim=2)\n" in code
    assert "    dmm = dmm_parts.reshape(-1, 16, 96)\n" in code
    assert "    dsl_1 = drs.reshape(-1, 16, 1, 2, 16)\n" in code


@pytest.mark.parametrize("activation, exp2, exp", [
    ("GELU", "_local *= -0.7213475204444817\n", ""),  # e^(−z²/2): log₂e folds into −1/2
    ("Elementwise(z*exp(-3*z))", "2^(-3z)", ""),  # e^(−3z): into −3
    ("Elementwise(exp(z) + z)", "", "exp(z)"),  # e^z alone: a pass of its own for log₂e
    ("Elementwise(exp(2*z + 1))", "", "exp(sum)"),  # e^(2z + 1): a sum keeps its cancellation
])
def test_e_to_the_u_is_2_to_the_u_only_where_log2e_folds_into_a_number(activation, exp2, exp):
    """The torch module computes e^u as 2^(u·log₂e) where u is a number times the rest, log₂e folded into that number;
    e^u of one value (a softmax's e^(log p)) and of a sum stay torch.exp."""
    from symprop.derivation import Derivation

    layer = S.GELU() if activation == "GELU" else S.Elementwise(activation[len("Elementwise("):-1])
    model = S.Model(S.Sequential(S.Linear(3, 4), layer, S.Linear(4, 2)), S.CrossEntropyLoss(), name="e_to_the_u",
                    inputs=3)
    code = Derivation(model).render("torch").split("\ndef loss_and_gradients(")[1].split("\ndef ")[0]
    assert ("exp2" in code) == bool(exp2), code
    assert "*= 1.4426950408889634" not in code  # log₂e never costs a pass of its own
    assert "torch.exp_(logp)" in code  # the softmax's probabilities: e^(log p)
    if exp2.endswith("\n"):
        assert exp2 in code


def test_an_hvp_adds_each_product_of_its_tangents_in_one_kernel():
    """An hvp's tangent δ = Σ cᵢ·aᵢ·bᵢ (a layer norm's, a softmax's) is computed into an array read for the last
    time, one addcmul_ a term, the small factors multiplied first; its numbers as floats (√2 as 1.414…)."""
    from symprop.derivation import Derivation

    code = Derivation(encoder_model(), hvp=True).render("torch").split("\ndef hvp(")[1].split("\ndef ")[0]
    assert code.count(".addcmul_(") >= 8 and "torch.sqrt(2)" not in code
    assert "    dr1_0_dot.addcmul_(rstd_n1_0 * sum_drstd_n1_0, xhat_n1_0_dot, value=-0.0625)\n" in code


def test_an_update_split_in_two_kernels_never_reads_the_array_the_first_changed():
    """h = z + u + z·g/2, z read for the last time: h is computed in z's array, and h += u + z·g/2 cannot be
    h.add_(u).addcmul_(z, g), whose second kernel would read z after the first changed it: it stays one update."""
    import torch
    from test_ops import modules, run

    class Gated(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.f, self.o, self.o2 = torch.nn.Linear(6, 4), torch.nn.Linear(4, 3), torch.nn.Linear(4, 3)

        def forward(self, x):
            z = torch.sin(self.f(x))
            h = z + x[:, :4] + 0.5 * z * x[:, 2:]
            return self.o(h) + self.o2(torch.tanh(h))

    torch.manual_seed(0)
    net, loss = Gated().double(), torch.nn.CrossEntropyLoss()
    x, t = torch.randn(5, 6, dtype=torch.float64), torch.randint(0, 3, (5,))
    model = S.from_torch(net, loss, example_inputs=(x,), example_target=t)
    expected = loss(net(x), t)
    expected.backward()
    params = {k: p.detach() for k, p in net.named_parameters()}
    for backend, namespace in modules(model).items():
        _, value, grads = run(namespace, backend, params, {"x": x}, t)
        assert abs(float(value) - expected.item()) < 1e-12, backend
        for key, parameter in net.named_parameters():
            assert torch.allclose(grads[key], parameter.grad, rtol=1e-10, atol=1e-12), (backend, key)


def test_no_gradient_flows_through_a_softmax_max_shift(build):
    """softmax(z − m) does not depend on m, so m gets no cotangent: a softmax under MSE (or before
    cross-entropy) has no branch on z = m in its δ, and reads p alone: δ = p ⊙ (g − Σ p·g)."""
    import inspect

    import torch

    model = S.Model(S.Sequential(S.Linear(4, 5), S.Softmax()), S.MSELoss(), name="softmax_mse", inputs=4)
    numpy_module, torch_module = build(model)
    for module in (numpy_module, torch_module):
        code = inspect.getsource(module.loss_and_gradients)
        assert "where" not in code and "select" not in code and "eq(" not in code, code
    rng = np.random.default_rng(0)
    params = {k: rng.standard_normal(v.shape) for k, v in numpy_module.init_params().items()}
    x, t = rng.standard_normal((7, 4)), rng.uniform(size=(7, 5))
    reference = torch.nn.Sequential(torch.nn.Linear(4, 5), torch.nn.Softmax(dim=1)).double()
    reference.load_state_dict({k: torch.from_numpy(v) for k, v in params.items()})
    loss = torch.nn.functional.mse_loss(reference(torch.from_numpy(x)), torch.from_numpy(t))
    loss.backward()
    ours, gradients = numpy_module.loss_and_gradients(params, x, t)
    assert abs(ours - loss.item()) <= 1e-12 * abs(loss.item())
    for key, parameter in reference.named_parameters():
        np.testing.assert_allclose(gradients[key], parameter.grad.numpy(), rtol=1e-10, atol=1e-14)


def test_a_local_derivative_goes_into_the_activation_it_reads_last(build):
    """tanh's 1 − h² is computed into h's own array where h is read for the last time (torch's tanh_backward
    is one kernel with no temporary), so the backward pass makes no array for it."""
    import inspect

    model = S.Model(S.Sequential(S.Linear(8, 16), S.Tanh(), S.Linear(16, 16), S.Tanh(), S.Linear(16, 3)),
                    S.CrossEntropyLoss(), name="tanh_local", inputs=8)
    numpy_module, torch_module = build(model)
    numpy_code = inspect.getsource(numpy_module.loss_and_gradients)
    torch_code = inspect.getsource(torch_module.loss_and_gradients)
    assert "dh1_dz0 = np.square(h1, out=h1)" in numpy_code and "h1**2" not in numpy_code
    assert "dh1_dz0 = torch.square_(h1)" in torch_code and "h1**2" not in torch_code


def test_a_loss_sums_its_product_in_one_pass(build):
    """NumPy: Σ of a product of whole arrays (cross-entropy's onehot ⊙ (log s − shifted)) is einsums, which make
    no array of the product, nor of log s − shifted; torch: a dot product."""
    import inspect

    numpy_module, torch_module = build(mlp())
    assert 'total = np.einsum("ij,ij->", onehot, np.log(s)) - np.einsum("ij,ij->", onehot, shifted)' in \
        inspect.getsource(numpy_module.loss_and_gradients)
    assert "total = -torch.dot(logp.reshape(-1), onehot.reshape(-1))" in inspect.getsource(
        torch_module.loss_and_gradients)


def test_a_long_local_derivative_is_computed_in_place(build):
    """GELU′(z) = z·φ(z) + Φ(z), as written, makes an array per operation (eight of z's size); printed as steps
    into one array, it makes one. The erf is computed once: kept from the forward pass, never computed again (it
    costs ten passes in torch). Both modules still agree with autograd."""
    import inspect

    import torch

    model = S.Model(S.Sequential(S.Linear(6, 32), S.GELU(), S.Linear(32, 3)), S.MSELoss(), name="gelu_local",
                    inputs=6)
    numpy_module, torch_module = build(model)
    code = inspect.getsource(torch_module.loss_and_gradients)
    assert "dz0_local = z0**2" in code and "dz0_local.add_(tmp2, alpha=0.5)" in code and code.count("erf") == 1
    assert "dz0 *= dz0_local" in code and "erf" in inspect.getsource(numpy_module.loss_and_gradients)
    rng = np.random.default_rng(1)
    params = {k: rng.standard_normal(v.shape) for k, v in numpy_module.init_params().items()}
    x, t = rng.standard_normal((9, 6)) * 2, rng.standard_normal((9, 3))
    reference = torch.nn.Sequential(torch.nn.Linear(6, 32), torch.nn.GELU(), torch.nn.Linear(32, 3)).double()
    reference.load_state_dict({k: torch.from_numpy(v) for k, v in params.items()})
    torch.nn.functional.mse_loss(reference(torch.from_numpy(x)), torch.from_numpy(t)).backward()
    _, numpy_gradients = numpy_module.loss_and_gradients(params, x, t)
    _, torch_gradients = torch_module.loss_and_gradients({k: torch.from_numpy(v) for k, v in params.items()},
                                                        torch.from_numpy(x), torch.from_numpy(t))
    for key, parameter in reference.named_parameters():
        np.testing.assert_allclose(numpy_gradients[key], parameter.grad.numpy(), rtol=1e-10, atol=1e-13)
        np.testing.assert_allclose(torch_gradients[key].numpy(), parameter.grad.numpy(), rtol=1e-10, atol=1e-13)


def test_torch_one_hot_targets_are_made_in_the_arrays_dtype(build):
    """F.one_hot makes an int64 array (twice a float32 one) before .to(dtype): at a language model's loss that
    was the peak. The helper scatters ones into an array of the dtype; the ignore_index mask is in it too."""
    import inspect

    import torch

    _, torch_module = build(mlp())
    assert "onehot = one_hot(t, 10, x.dtype)" in inspect.getsource(torch_module.loss_and_gradients)
    ids = torch.tensor([[2, 0], [1, 3]])
    made = torch_module.one_hot(ids, 4, torch.float32)
    assert made.dtype == torch.float32 and torch.equal(made, torch.nn.functional.one_hot(ids, 4).float())


FAULTS_PER_CALL = """
import importlib.util, resource, sys
import numpy as np
spec = importlib.util.spec_from_file_location("module", sys.argv[1])
module = importlib.util.module_from_spec(spec)
spec.loader.exec_module(module)
rng = np.random.default_rng(0)
params = {k: v.astype(np.float32) for k, v in module.init_params().items()}
x, t = rng.standard_normal((512, 64)).astype(np.float32), rng.integers(0, 10, 512)
for _ in range(3):
    module.loss_and_gradients(params, x, t)
before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
for _ in range(10):
    module.loss_and_gradients(params, x, t)
print((resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before) / 10)
"""


@pytest.mark.skipif(platform.libc_ver()[0] != "glibc", reason="the heap's threshold is glibc's")
def test_a_call_reuses_the_pages_of_the_call_before(tmp_path):
    """glibc returns the free top of its heap to the system past a threshold, so that every call would fault its
    arrays' pages in anew; the module's untouched block, freed at import, raises the threshold once. The same
    module without it, in a fresh process of its own, faults hundreds of pages a call."""
    layers = [layer for _ in range(8) for layer in (S.Linear(64, 64), S.Tanh())]  # arrays of 128 KB, many alive
    deep = S.Model(S.Sequential(*layers, S.Linear(64, 10)), S.CrossEntropyLoss(), name="deep_faults", inputs=64)
    text = S.derive_network(deep).render("numpy")
    block = "_block = np.empty(31 << 20, np.uint8)\ndel _block\n"
    assert block in text
    faults = {}
    for name, source in (("module", text), ("without_block", text.replace(block, ""))):
        path = tmp_path / f"{name}.py"
        path.write_text(source)
        run = subprocess.run([sys.executable, "-c", FAULTS_PER_CALL, str(path)], capture_output=True, text=True,
                             check=True)
        faults[name] = float(run.stdout)
    assert faults["module"] < 10 < 100 < faults["without_block"], faults


def golden_lenet():
    """(examples/lenet.py, the golden record's lenet_numpy module), each imported afresh."""
    import importlib.util

    from conftest import GOLDEN

    sys.path.insert(0, str(GOLDEN.parents[1] / "examples"))
    try:
        import lenet
    finally:
        sys.path.pop(0)
    spec = importlib.util.spec_from_file_location("lenet_numpy_golden", GOLDEN / "lenet_numpy.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return lenet, module


def autograd_peak(call) -> int:
    """The most bytes torch's allocator held at once during call(), from its events (tracemalloc does not see
    them)."""
    from torch.profiler import ProfilerActivity, profile

    with profile(activities=[ProfilerActivity.CPU], profile_memory=True) as prof:
        call()
    running = peak = 0
    for _, nbytes in sorted((e.start_ns(), e.nbytes()) for e in prof.profiler.kineto_results.events()
                            if e.name() == "[memory]"):
        running += nbytes
        peak = max(peak, running)
    return peak


def test_a_convolution_copies_its_windows_a_chunk_of_samples_at_a_time():
    """LeNet's windows laid out for BLAS (im2col) are four to nine times the output of their convolution: copied for
    the whole batch, forward and again for the kernel's gradient, they made the NumPy call's peak 7.6 MiB at batch 64
    where autograd holds 4.5. A few samples at a time, the NumPy module holds no more than autograd."""
    lenet, module = golden_lenet()
    net, criterion, (images,), labels = lenet.build(batch=64)
    params = {k: v.detach().numpy() for k, v in net.state_dict().items()}
    x, t = images.numpy(), labels.numpy()
    module.loss_and_gradients(params, x, t)
    tracemalloc.start()
    module.loss_and_gradients(params, x, t)
    numpy_peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()

    def autograd():
        net.zero_grad(set_to_none=True)
        criterion(net(images), labels).backward()

    autograd()
    held = autograd_peak(autograd)
    assert 0 < numpy_peak <= held, (numpy_peak, held)


def test_a_relu_mask_multiplies_in_place_without_an_array_of_its_own():
    """δ *= H(h) after a δ computed in place (a convolution's, after its pooling's scatter) was printed
    (h > 0).astype(x.dtype) in NumPy, an array of the batch's size made and read once, and torch.sign(h) in torch where
    h, read for the last time, could take it in place (h.sign_()), as a product's mask was already."""
    import re

    from conftest import committed

    for path in committed("*.py"):
        lines = path.read_text().splitlines()
        for line, after in zip(lines, lines[1:] + [""], strict=True):
            assert not re.search(r"\*= \(\w+ > 0\)\.astype", line), f"{path.name}: {line.strip()}"
            dies = re.match(r"\s*\w+ \*= torch\.sign\((\w+)\)$", line)
            assert not (dies and re.match(rf"\s*del .*\b{dies.group(1)}\b", after)), f"{path.name}: {line.strip()}"


def test_a_gradient_summed_in_chunks_is_an_array_for_an_empty_batch_too():
    """A kernel's gradient summed chunk by chunk started from Python's sum(), whose empty sum is the int 0: an empty
    batch gave conv1.weight's gradient as 0, where autograd gives zeros of its shape."""
    import torch

    lenet, module = golden_lenet()
    net, criterion, _, _ = lenet.build()
    net = net.double()
    x, t = torch.zeros(0, 1, 32, 32, dtype=torch.float64), torch.zeros(0, dtype=torch.int64)
    criterion(net(x), t).backward()
    params = {k: v.detach().numpy() for k, v in net.state_dict().items()}
    with np.errstate(invalid="ignore", divide="ignore"):
        _, gradients = module.loss_and_gradients(params, x.numpy(), t.numpy())
    for key, p in net.named_parameters():
        assert isinstance(gradients[key], np.ndarray) and gradients[key].shape == tuple(p.shape), key
        np.testing.assert_array_equal(gradients[key], p.grad.numpy(), err_msg=key)


def test_chunks_keep_the_dtype_arithmetic_gives():
    """The array a chunked line fills was made in x's dtype: float32 images with float64 parameters gave float32
    convolution outputs and kernel gradients, where the products give float64 (and every other gradient was)."""
    _, module = golden_lenet()
    params = module.init_params(0)  # float64
    rng = np.random.default_rng(0)
    x, t = rng.random((40, 1, 32, 32), dtype=np.float32), rng.integers(0, 10, 40)
    _, gradients = module.loss_and_gradients(params, x, t)
    assert {key: str(g.dtype) for key, g in gradients.items()} == dict.fromkeys(params, "float64")


class SliceReadLate:
    """h.sign_() (h read for the last time by name) overwrote h[:, :, :4], a view read later through the slice."""

    def __init__(self, torch):
        nn = torch.nn

        class Net(nn.Module):
            def __init__(self):
                super().__init__()
                self.l1, self.l2, self.l3, self.l5 = nn.Linear(6, 8), nn.Linear(4, 3), nn.Linear(4, 3), nn.Linear(3, 8)

            def forward(self, x):
                h = torch.relu((self.l1(x) + self.l5(self.l3(x[:, :4]))).unsqueeze(1))
                return self.l2(nn.functional.max_pool1d(h, 2).flatten(1)) + self.l3(h[:, :, :4].flatten(1))

        self.net, self.x = Net(), torch.randn(9, 6)


class ViewAndSlice:
    """h's reshape, computed into in place at h's last read (rs *= 2), overwrote h[:, :4], read later."""

    def __init__(self, torch):
        nn = torch.nn

        class Net(nn.Module):
            def __init__(self):
                super().__init__()
                self.a, self.b, self.c = nn.Linear(6, 8), nn.Linear(8, 3), nn.Linear(4, 3)

            def forward(self, x):
                h = self.a(x)
                head = h[:, :4]
                return self.b((h.view(-1, 2, 4) * 2.0).flatten(1)) + self.c(head)

        self.net, self.x = Net(), torch.randn(5, 6)


class ReadInsideAProduct:
    """δ was freed before the product that reads it (del dz_2, then dz += (dz_2 @ w) * (1 - h**2)):
    UnboundLocalError."""

    def __init__(self, torch):
        nn = torch.nn

        class Net(nn.Module):
            def __init__(self):
                super().__init__()
                self.a, self.b, self.c = nn.Linear(6, 8), nn.Linear(8, 3), nn.Linear(8, 3)

            def forward(self, x):
                h = self.a(x)
                return self.b(torch.tanh(h)) + self.c(h)

        self.net, self.x = Net(), torch.randn(5, 6)


class LongEncoder:
    """A value computed again that is a product (no expression of its own) crashed the plan's in-place check
    (nn.TransformerEncoderLayer at sequence length 16)."""

    def __init__(self, torch):
        nn = torch.nn

        class Net(nn.Module):
            def __init__(self):
                super().__init__()
                self.enc = nn.TransformerEncoderLayer(8, 2, 32, dropout=0.0, batch_first=True)
                self.o = nn.Linear(8, 3)

            def forward(self, x):
                h = self.enc(x)
                return self.o(h[:, 0] * h[:, -1] + h.mean(1))

        self.net, self.x = Net(), torch.randn(5, 16, 8)


@pytest.mark.parametrize("case", [SliceReadLate, ViewAndSlice, ReadInsideAProduct, LongEncoder],
                         ids=lambda c: c.__name__)
def test_arrays_that_share_memory_are_not_written_while_read(case):
    """The memory plan writes into an array only where no other name for it is read later, frees an array only
    after its last read (through a product printed in place too): both modules agree with autograd, and called
    twice, give the same."""
    import torch
    from torch import nn

    torch.manual_seed(0)
    made = case(torch)
    net, x = made.net.double(), made.x.double()
    t = torch.randint(0, 3, (len(x),))
    nn.CrossEntropyLoss()(net(x), t).backward()
    model = S.from_torch(net, nn.CrossEntropyLoss(), example_inputs=(x,), example_target=t)
    derivation = S.derive_network(model)
    for backend in ("numpy", "torch"):
        scope = {}
        exec(derivation.render(backend), scope)  # noqa: S102 (symprop's own generated code)
        params = {k: p.detach().clone() for k, p in net.named_parameters()}
        args = ({k: v.numpy() for k, v in params.items()}, x.numpy(), t.numpy()) if backend == "numpy" else \
            (params, x, t)
        for _ in range(2):
            _, gradients = scope["loss_and_gradients"](*args)
            for key, p in net.named_parameters():
                error = float(np.abs(np.asarray(gradients[key]) - p.grad.numpy()).max())
                assert error <= 1e-12, (backend, key, error)
