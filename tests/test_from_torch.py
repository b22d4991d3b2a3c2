"""From torch, and back: torch modules as written, derived; the generated torch Module trained by torch.optim."""

from __future__ import annotations

import re

import pytest
import torch
from conftest import generated_modules
from test_ops import modules
from torch import nn
from torch.nn import functional as TF

import symprop as S
from symprop.check import relative_error

TOLERANCE = 1e-10


def generated(model, tmp_path):
    return generated_modules(model, tmp_path)


def agree(net, loss_fn, model, tmp_path, inputs, t):
    """loss.backward() on the torch module's own state_dict against both generated modules."""
    net = net.double()
    net.zero_grad()
    want = loss_fn(net(*inputs), t)
    want.backward()
    grads = {key: p.grad for key, p in net.named_parameters()}
    state = {key: value.detach().clone() for key, value in net.state_dict().items()}  # tied: both keys
    assert list(model.parameters) == [key for key, _ in net.named_parameters()]
    modules = generated(model, tmp_path)
    loss, ours = modules["numpy"].loss_and_gradients({k: v.numpy() for k, v in state.items()},
                                                     *(x.numpy() for x in inputs), t.numpy())
    assert relative_error(loss, want.detach()) <= TOLERANCE
    assert all(relative_error(ours[k], g) <= TOLERANCE for k, g in grads.items()), ours
    loss, ours = modules["torch"].loss_and_gradients(state, *inputs, t)
    assert relative_error(loss, want.detach()) <= TOLERANCE
    assert all(relative_error(ours[k], g) <= TOLERANCE for k, g in grads.items()), ours


# The blog posts' three models, exactly as the posts write them.
SEEDS = {
    "binary": (lambda: nn.Sequential(nn.Linear(6, 4), nn.Linear(4, 1), nn.Sigmoid()), nn.BCELoss, 6, "unit"),
    "three_class": (lambda: nn.Sequential(nn.Linear(6, 4), nn.Linear(4, 3)), nn.CrossEntropyLoss, 6, "index"),
    "regressor": (lambda: nn.Sequential(nn.Linear(4, 2), nn.Linear(2, 1)), nn.MSELoss, 4, "real"),
}


@pytest.mark.parametrize("seed", SEEDS)
def test_the_blog_posts_models_through_from_torch(seed, tmp_path):
    make, loss_class, width, kind = SEEDS[seed]
    torch.manual_seed(0)
    net, loss = make(), loss_class()
    model = S.from_torch(net, loss, inputs=width, name=seed)
    x = torch.randn(8, width, dtype=torch.float64)
    t = {"unit": lambda: torch.rand(8, 1, dtype=torch.float64), "index": lambda: torch.randint(0, 3, (8,)),
         "real": lambda: torch.randn(8, 1, dtype=torch.float64)}[kind]()
    agree(net, loss, model, tmp_path, (x,), t)


class Residual(nn.Module):
    def __init__(self):
        super().__init__()
        self.fc1 = nn.Linear(5, 5)
        self.norm = nn.LayerNorm(5)
        self.fc2 = nn.Linear(8, 3)
        self.scale = nn.Parameter(torch.ones(5))

    def forward(self, x, u):
        h = x + torch.relu(self.fc1(x))                   # a residual
        h = self.norm(h + TF.gelu(self.fc1(h))) * self.scale   # fc1 again: tied
        return self.fc2(torch.cat([h, u], dim=1))         # a second input


class Tied(nn.Module):
    """A weight shared by two modules (as an embedding and an output layer share one)."""

    def __init__(self):
        super().__init__()
        self.encode = nn.Linear(4, 4, bias=False)
        self.decode = nn.Linear(4, 4)
        self.decode.weight = self.encode.weight

    def forward(self, x):
        return self.decode(torch.tanh(self.encode(x))).sum(dim=1, keepdim=True)


def test_a_custom_module_with_residuals_two_inputs_tied_weights_and_a_penalty(tmp_path):
    torch.manual_seed(1)
    net = Residual()

    def loss(y, t):
        return TF.cross_entropy(y, t) + 1e-2 * (net.fc1.weight ** 2).sum()

    model = S.from_torch(net, loss, inputs={"x": 5, "u": 3}, name="residual")  # class indices: read off the loss
    assert model.target_kind == "index"
    x, u = torch.randn(6, 5, dtype=torch.float64), torch.randn(6, 3, dtype=torch.float64)
    agree(net, loss, model, tmp_path, (x, u), torch.randint(0, 3, (6,)))


def test_a_weight_shared_by_two_modules_stays_one(tmp_path):
    torch.manual_seed(2)
    net = Tied()
    model = S.from_torch(net, nn.MSELoss(), inputs=4, name="tied")
    assert list(model.parameters) == ["encode.weight", "decode.bias"] == [k for k, _ in net.named_parameters()]
    agree(net, nn.MSELoss(), model, tmp_path, (torch.randn(5, 4, dtype=torch.float64),),
          torch.randn(5, 1, dtype=torch.float64))


class PreNorm(nn.Module):
    """Residuals as a pre-norm block writes them: a sum read by a layer norm and by the next sum, and a last sum
    read by the final norm alone."""

    def __init__(self):
        super().__init__()
        self.ln_1, self.ln_2, self.ln_f = nn.LayerNorm(4), nn.LayerNorm(4), nn.LayerNorm(4)
        self.fc, self.proj, self.head = nn.Linear(4, 4), nn.Linear(4, 4), nn.Linear(4, 3)

    def forward(self, x):
        x = x + self.fc(self.ln_1(x))
        x = x + self.proj(torch.tanh(self.ln_2(x)))
        return self.head(self.ln_f(x + torch.tanh(x)))


def test_a_layer_norm_of_a_residual_sum_takes_its_compact_form(tmp_path):
    """δx = σ⁻¹ ⊙ (x̂̄ − mean(x̂̄) − x̂ ⊙ mean(x̂̄ ⊙ x̂)): the layer norm's Σ reads x̂̄, not the δ of x − μ, also where x
    is a sum of arrays; each residual is a named step, and no line renames another (x = tmp3)."""
    torch.manual_seed(2)
    net = PreNorm()
    model = S.from_torch(net, nn.CrossEntropyLoss(), example_inputs=(torch.randn(5, 4),),
                         example_target=torch.randint(0, 3, (5,)))
    code = S.Derivation(model).render("numpy")
    closed = code[code.index("Closed forms"):code.index('"""', code.index("Closed forms"))].splitlines()
    sums = [line for line in closed if line.lstrip().startswith("sum_dsum_")]
    assert len(sums) == 2 and not any("dxc" in line for line in sums), sums
    backward = [line for line in closed if line.lstrip().startswith("d")]
    assert not any(re.search(r"\bxc_", line) for line in backward), backward  # it reads x̂: the code keeps x̂
    assert "    res_1 = res + z_1" in closed
    assert not [line for line in closed if re.fullmatch(r"\s+\w+ = tmp\d+", line)]
    x = torch.randn(6, 4, dtype=torch.float64)
    agree(net, nn.CrossEntropyLoss(), model, tmp_path, (x,), torch.randint(0, 3, (6,)))


class PreNormStack(nn.Module):
    """Four pre-norm blocks, each layer norm's input the sum the block before made (torch.fx reads it)."""

    def __init__(self):
        super().__init__()
        self.norms = nn.ModuleList([nn.LayerNorm(6) for _ in range(4)])
        self.blocks = nn.ModuleList([nn.Linear(6, 6) for _ in range(4)])
        self.head = nn.Linear(6, 2)

    def forward(self, x):
        for norm, block in zip(self.norms, self.blocks, strict=True):
            x = x + torch.tanh(block(norm(x)))
        return self.head(x)


class GrowingSums(nn.Module):
    """Layer norms of sums that each hold the one before (torch.export reads it)."""

    def __init__(self):
        super().__init__()
        self.l1, self.l2, self.l3 = nn.LayerNorm(6), nn.LayerNorm(6), nn.LayerNorm(6)
        self.a, self.b, self.c, self.head = nn.Linear(6, 6), nn.Linear(6, 6), nn.Linear(6, 6), nn.Linear(6, 2)

    def forward(self, x):
        p, q, u = self.a(x), self.b(x), self.c(x)
        return self.head(self.l1(p + q) + self.l2(p + q + u) + self.l3(p + q + u + x))


@pytest.mark.parametrize("net", [PreNormStack, GrowingSums])
def test_layer_norms_of_nested_sums(net, tmp_path):
    """A stored sum inside the next stored sum: each is computed under its own name (the code read a name it never
    defined, and failed)."""
    torch.manual_seed(0)
    net = net().double()
    x, t = torch.randn(5, 6, dtype=torch.float64), torch.randn(5, 2, dtype=torch.float64)
    model = S.from_torch(net, nn.MSELoss(), inputs=6) if isinstance(net, PreNormStack) else \
        S.from_torch(net, nn.MSELoss(), example_inputs=(x,), example_target=t)
    agree(net, nn.MSELoss(), model, tmp_path, (x,), t)


def test_transformer_encoder_layer_with_a_causal_mask(tmp_path):
    class Encoder(nn.Module):
        def __init__(self):
            super().__init__()
            self.layer = nn.TransformerEncoderLayer(8, 2, 16, dropout=0.0, batch_first=True, norm_first=True)
            self.head = nn.Linear(8, 2)

        def forward(self, x):
            mask = nn.Transformer.generate_square_subsequent_mask(5)
            return self.head(self.layer(x, src_mask=mask, is_causal=True))

    torch.manual_seed(3)
    net = Encoder()
    model = S.from_torch(net, nn.MSELoss(), inputs={"x": (5, 8)}, name="encoder")
    x = torch.randn(3, 5, 8, dtype=torch.float64)
    agree(net, nn.MSELoss(), model, tmp_path, (x,), torch.randn(3, 5, 2, dtype=torch.float64))


class Sorting(nn.Module):
    def __init__(self):
        super().__init__()
        self.fc = nn.Linear(3, 3)

    def forward(self, x):
        return torch.sort(self.fc(x))[0]


class Branching(nn.Module):
    def __init__(self):
        super().__init__()
        self.fc = nn.Linear(3, 3)

    def forward(self, x):
        h = self.fc(x)
        if h.sum() > 0:
            return h
        return -h


BAD = {
    "torch.sort": (Sorting, "forward (test_from_torch.py:", "torch.sort is not supported by symprop"),
    "control flow": (Branching, "forward: torch.fx cannot trace it: TraceError: symbolically traced variables "
                                "cannot be used as inputs to control flow", ""),
    "a layer symprop lacks": (lambda: nn.Sequential(nn.Linear(3, 3), nn.PReLU()),
                              "1: torch.nn.PReLU is not supported", ""),
    "dropout": (lambda: nn.Sequential(nn.Linear(3, 3), nn.Dropout(0.1)), "1: Dropout: p=0.1 in training mode", ""),
}


@pytest.mark.parametrize("case", BAD)
def test_what_symprop_cannot_derive_is_one_line(case):
    make, start, message = BAD[case]
    with pytest.raises(S.SymPropError) as error:
        S.from_torch(make(), nn.MSELoss(), inputs=3)
    said = str(error.value)
    assert "\n" not in said and said.startswith(start) and message in said, said


def test_an_unsupported_loss_is_one_line():
    """A loss module that symprop has no layer for is read through its forward, where torch.fx meets the function."""
    with pytest.raises(S.SymPropError, match="poisson_nll_loss is not supported by symprop") as error:
        S.from_torch(nn.Sequential(nn.Linear(3, 1)), nn.PoissonNLLLoss(), inputs=3)
    assert "\n" not in str(error.value)


# -- back into torch: the generated Module -------------------------------------------------------------------
def test_generated_module_trains_with_adam_as_torch_does(tmp_path):
    torch.manual_seed(4)
    net = nn.Sequential(nn.Linear(6, 4), nn.Tanh(), nn.Linear(4, 3)).double()
    model = S.from_torch(net, nn.CrossEntropyLoss(), inputs=6, name="adam")
    module = generated(model, tmp_path)["torch"]
    ours = module.Module(net.state_dict())
    assert list(ours.state_dict()) == list(module.PARAM_SHAPES) == list(net.state_dict())
    theirs_opt, ours_opt = torch.optim.Adam(net.parameters(), lr=0.01), torch.optim.Adam(ours.parameters(), lr=0.01)
    x, t = torch.randn(16, 6, dtype=torch.float64), torch.randint(0, 3, (16,))
    for _ in range(20):
        for optimizer, loss in ((theirs_opt, lambda: TF.cross_entropy(net(x), t)), (ours_opt, lambda: ours(x, t))):
            optimizer.zero_grad()
            loss().backward()
            optimizer.step()
    for key, value in net.state_dict().items():
        assert relative_error(ours.state_dict()[key], value) <= 1e-9, key
    assert relative_error(ours.predict(x), net(x).detach()) <= 1e-9


def test_generated_module_under_torch_compile(tmp_path):
    model = S.Model(S.Sequential(S.Linear(3, 4), S.ReLU(), S.Linear(4, 1)), S.MSELoss(), name="compiled")
    module = generated(model, tmp_path)["torch"]
    eager = module.Module(seed=0)
    compiled = torch.compile(module.Module(seed=0))
    x, t = torch.randn(8, 3, dtype=torch.float64), torch.randn(8, 1, dtype=torch.float64)
    for m in (eager, compiled):
        m(x, t).backward()
    for (key, a), b in zip(eager.named_parameters(), compiled.parameters(), strict=True):
        assert relative_error(b.grad, a.grad) <= 1e-12, key


def test_generated_module_refuses_a_float_argument_of_another_dtype(tmp_path):
    """Module(seed=0) is float64: float32 data failed inside torch ("mat1 and mat2 must have the same dtype"); now
    one line that names the argument and says what to do (issue 26, item 6)."""
    model = S.Model(S.Sequential(S.Linear(3, 4), S.ReLU(), S.Linear(4, 1)), S.MSELoss(), name="dtypes")
    m = generated(model, tmp_path)["torch"].Module(seed=0)
    x, t = torch.randn(8, 3), torch.randn(8, 1)
    with pytest.raises(ValueError, match=r"^x is torch.float32, the parameters torch.float64: convert one of them "
                                         r"\(m.to\(torch.float32\) or x.to\(torch.float64\)\)$"):
        m(x, t)
    m.float()(x, t).backward()
    assert all(p.grad.dtype == torch.float32 for p in m.parameters())


class TorchUsersWrite(nn.Module):
    """What torch code is full of: x.view(x.size(0), -1), flatten, unsqueeze/squeeze, clamp, dropout at p = 0."""

    def __init__(self):
        super().__init__()
        self.fc1 = nn.Linear(6, 4)
        self.drop = nn.Dropout(0.0)
        self.fc2 = nn.Linear(4, 2)

    def forward(self, x):
        h = x.view(x.size(0), -1)
        h = self.drop(torch.clamp(self.fc1(h), min=-1.0).unsqueeze(1)).squeeze(1)
        h = TF.dropout(h, p=0.0, training=self.training) + h.pow(2).mean(dim=1, keepdim=True)
        return self.fc2(torch.flatten(h, 1))


def test_what_torch_code_is_full_of(tmp_path):
    torch.manual_seed(7)
    net = TorchUsersWrite()
    model = S.from_torch(net, nn.MSELoss(), inputs={"x": (2, 3)}, name="torch_code")
    x = torch.randn(5, 2, 3, dtype=torch.float64)
    agree(net, nn.MSELoss(), model, tmp_path, (x,), torch.randn(5, 2, dtype=torch.float64))
    with pytest.raises(S.SymPropError, match="p=0.1 in training mode"):
        S.from_torch(nn.Sequential(nn.Linear(3, 3), nn.Dropout(0.1)), nn.MSELoss(), inputs=3)


def test_dropout_in_eval_mode_is_the_identity_on_the_fx_path_too(tmp_path):
    """pytorch/examples' MNIST network after .eval(): its Dropout(0.5) layers are the identity, as torch runs them."""
    torch.manual_seed(3)
    net = nn.Sequential(nn.Linear(4, 6), nn.ReLU(), nn.Dropout(0.5), nn.Linear(6, 3)).eval()
    model = S.from_torch(net, nn.CrossEntropyLoss(), inputs=4, name="eval_dropout")
    agree(net, nn.CrossEntropyLoss(), model, tmp_path, (torch.randn(5, 4, dtype=torch.float64),),
          torch.randint(0, 3, (5,)))


class TokenShift(nn.Module):
    """Each position mixed with the one before it, as RWKV-style models write a token shift: torch.roll along the
    sequence, then a mean over it."""

    def __init__(self):
        super().__init__()
        self.a = nn.Linear(4, 4)
        self.head = nn.Linear(4, 2)

    def forward(self, x):
        h = torch.tanh(self.a(x))
        mixed = 0.5 * h + 0.5 * torch.roll(h, shifts=1, dims=1)
        return self.head(mixed.mean(1))


@pytest.mark.parametrize("how", ["fx", "export"])
def test_roll_and_a_mean_method_read_by_either_front(how, tmp_path):
    """torch.roll (torch.export lowers it to index_select with a fixed index) is a join of two slices; and the check's
    torch run of a module read by torch.fx calls torch's own methods (x.mean(1) had been sent to symprop's)."""
    from symprop.check import reference, reference_hvp

    torch.manual_seed(0)
    net = TokenShift().double()
    x, t = torch.randn(3, 5, 4, dtype=torch.float64), torch.randint(0, 2, (3,))
    loss = nn.CrossEntropyLoss()
    model = S.from_torch(net, loss, inputs={"x": (5, 4)}) if how == "fx" else \
        S.from_torch(net, loss, example_inputs=(x,), example_target=t)
    agree(net, loss, model, tmp_path, (x,), t)
    params = {k: p.detach().clone() for k, p in net.named_parameters()}
    _, grads = reference(model, params, {"x": x}, t)
    assert all(relative_error(grads[k], p.grad) <= TOLERANCE for k, p in net.named_parameters())
    v = {k: torch.randn_like(p) for k, p in params.items()}
    want = reference_hvp(model, params, {"x": x}, t, v)
    _, got = modules(model, hvp=True)["torch"]["hvp"](params, x, t, v)
    assert all(relative_error(got[k], w) <= TOLERANCE for k, w in want.items())


class FrozenEmbedding(nn.Module):
    """Pretrained word vectors held frozen under a trained classifier (Embedding.from_pretrained(freeze=True))."""

    def __init__(self):
        super().__init__()
        self.emb = nn.Embedding.from_pretrained(torch.randn(7, 4, dtype=torch.float64), freeze=True)
        self.fc = nn.Linear(4, 3).double()

    def forward(self, idx):
        return self.fc(self.emb(idx).mean(1))


@pytest.mark.parametrize("front", ["export", "fx"])
def test_a_frozen_parameter_is_left_by_training_as_torch_leaves_it(front):
    """requires_grad=False: its gradient is derived as any other's (and agrees), the generated optimizers and the
    generated Module under torch.optim leave it, and the trained ones move as torch moves them."""
    torch.manual_seed(0)
    net = FrozenEmbedding()
    idx, t = torch.randint(0, 7, (4, 3)), torch.randint(0, 3, (4,))
    model = S.from_torch(net, nn.CrossEntropyLoss(), example_inputs=(idx,), example_target=t) if front == "export" \
        else S.from_torch(net, nn.CrossEntropyLoss(), inputs={"idx": (3,)}, target="index")
    assert model.frozen_keys == ["emb.weight"]
    namespace = modules(model)["torch"]
    params = {k: v.detach().clone() for k, v in net.named_parameters()}
    stepped, _, _ = namespace["sgd_step"](params, idx, t, lr=0.5)
    torch.optim.SGD([p for p in net.parameters() if p.requires_grad], lr=0.5).zero_grad()
    nn.CrossEntropyLoss()(net(idx), t).backward()
    with torch.no_grad():
        want = {k: p - 0.5 * p.grad if p.grad is not None else p for k, p in net.named_parameters()}
    assert torch.equal(stepped["emb.weight"], params["emb.weight"])
    assert all((stepped[k] - want[k]).abs().max() <= 1e-12 for k in want)
    made = namespace["Module"](net.state_dict())
    optimizer = torch.optim.SGD(made.parameters(), lr=0.5)
    made(idx, t).backward()
    optimizer.step()
    assert torch.equal(made.state_dict()["emb.weight"], net.state_dict()["emb.weight"])
    assert (made.state_dict()["fc.weight"] - want["fc.weight"]).abs().max() <= 1e-12


@pytest.mark.parametrize("front", ["export", "fx"])
def test_a_layer_norm_over_several_last_axes_agrees_with_autograd(front):
    """nn.LayerNorm([C, H, W]) after a convolution: over those axes flattened into one."""
    from test_conv import from_torch_agrees

    torch.manual_seed(0)
    net = nn.Sequential(nn.Conv2d(2, 3, 2, stride=2), nn.LayerNorm([3, 3, 3]), nn.ReLU(), nn.Flatten(),
                        nn.Linear(27, 3))
    with torch.no_grad():
        net[1].weight.uniform_(0.5, 1.5)
        net[1].bias.uniform_(-0.5, 0.5)
    x, t = torch.randn(4, 2, 6, 6, dtype=torch.float64), torch.randint(0, 3, (4,))
    from_torch_agrees(net, nn.CrossEntropyLoss(), x, t, inputs={"x": (2, 6, 6)} if front == "fx" else None)


@pytest.mark.parametrize("loss", [
    lambda y, t: TF.cross_entropy(y, t, reduction="none").mean(),
    lambda y, t: (TF.cross_entropy(y, t, reduction="none", ignore_index=1) * y[:, 0].detach().exp()).sum(),
    lambda y, t: TF.nll_loss(TF.log_softmax(y, dim=1), t, reduction="none").sum() / 2,
    lambda y, t: TF.cross_entropy(y.unsqueeze(2).expand(-1, -1, 3), t.unsqueeze(1).expand(-1, 3),
                                  reduction="none").mean(),
])
def test_per_sample_losses_reduced_by_the_user_agree_with_autograd(loss):
    """reduction="none": each sample's loss (0 where its target is ignored), weighed and reduced by the caller."""
    from test_conv import from_torch_agrees

    torch.manual_seed(0)
    x, t = torch.randn(5, 4, dtype=torch.float64), torch.tensor([0, 1, 2, 1, 0])
    from_torch_agrees(nn.Sequential(nn.Linear(4, 3)), loss, x, t)


def test_check_runs_a_functional_layer_norm_of_a_bare_parameter_in_torch():
    """torch.fx: F.layer_norm(x, shape, self.w), self.w an nn.Parameter of the module itself: symprop check's run in
    torch binds it to its tensor (it passed symprop's Parameter to torch, which refused it)."""
    from types import SimpleNamespace

    from symprop.check import compare

    class Scaled(nn.Module):
        def __init__(self):
            super().__init__()
            self.w, self.out = nn.Parameter(torch.rand(5, dtype=torch.float64) + 0.5), nn.Linear(5, 3).double()

        def forward(self, x):
            return self.out(TF.layer_norm(x, (5,), self.w, None, 1e-3))

    model = S.from_torch(Scaled(), nn.CrossEntropyLoss(), inputs={"x": (5,)})
    rows = compare(model, {b: SimpleNamespace(**ns) for b, ns in modules(model).items()}, seeds=(0,), batches=(3,))
    assert rows and all(row.passed for row in rows), rows


def test_cross_entropy_loss_module_with_probability_targets_on_the_fx_front(tmp_path):
    """nn.CrossEntropyLoss reads probabilities too: target="probs" says so (it was refused as 'index' only)."""
    torch.manual_seed(0)
    net = nn.Sequential(nn.Linear(3, 4), nn.Tanh(), nn.Linear(4, 3)).double()
    criterion = nn.CrossEntropyLoss()
    model = S.from_torch(net, criterion, inputs=3, target="probs", name="ce_probs")
    x, t = torch.randn(5, 3, dtype=torch.float64), torch.softmax(torch.randn(5, 3, dtype=torch.float64), -1)
    agree(net, criterion, model, tmp_path, (x,), t)
    with pytest.raises(S.SymPropError, match=r"^target: NLLLoss takes 'index' targets; leave target out$"):
        S.from_torch(net, nn.NLLLoss(), inputs=3, target="probs")


def test_nn_softmax_without_dim_takes_torchs_implicit_axis(tmp_path):
    """nn.Softmax() on (N, C, H, W) is over the channels, as torch chooses for 4 axes (it was read as the last)."""
    torch.manual_seed(1)
    net = nn.Sequential(nn.Conv2d(2, 3, 1), nn.Softmax()).double()
    model = S.from_torch(net, nn.MSELoss(), inputs={"x": (2, 3, 3)}, name="implicit_softmax")
    x, t = torch.randn(2, 2, 3, 3, dtype=torch.float64), torch.randn(2, 3, 3, 3, dtype=torch.float64)
    with pytest.warns(UserWarning, match="Implicit dimension choice"):
        agree(net, nn.MSELoss(), model, tmp_path, (x,), t)


def test_a_focal_loss_module_of_ones_own_is_traced_through_its_forward(tmp_path):
    """class FocalLoss(nn.Module), as research code writes one: torch.fx reads its forward, the target's
    unsqueeze(1) and gather telling that it holds class indices."""

    class FocalLoss(nn.Module):
        def __init__(self, gamma=2.0):
            super().__init__()
            self.gamma = gamma

        def forward(self, logits, target):
            log_p = TF.log_softmax(logits, dim=-1).gather(1, target.unsqueeze(1)).squeeze(1)
            return (-(1 - log_p.exp()) ** self.gamma * log_p).mean()

    torch.manual_seed(2)
    net, loss = nn.Sequential(nn.Linear(5, 3)), FocalLoss()
    model = S.from_torch(net, loss, inputs=5, name="focal_fx")
    agree(net, loss, model, tmp_path, (torch.randn(6, 5, dtype=torch.float64),), torch.randint(0, 3, (6,)))
