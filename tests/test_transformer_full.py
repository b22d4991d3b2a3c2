"""The whole Transformer: embeddings, positions, the decoder, nn.Transformer, padding masks, token-level
cross-entropy with ignore_index, and the character-level language model; each against torch's own modules."""

from __future__ import annotations

import itertools
import math
from pathlib import Path

import numpy as np
import pytest
import torch
from click.testing import CliRunner
from conftest import generated_modules
from torch import nn
from torch.nn import functional as TF

import symprop as S
from symprop.check import relative_error
from symprop.cli import main

ROOT = Path(__file__).resolve().parents[1]
TOLERANCE = 1e-9


def generated(model, tmp_path):
    return generated_modules(model, tmp_path)


def agree(modules, state, inputs, t, want, grads):
    """Both generated modules against torch's loss and gradients."""
    numpy_inputs = [x.numpy() for x in inputs]
    for backend, module in modules.items():
        if backend == "numpy":
            loss, ours = module.loss_and_gradients({k: v.numpy() for k, v in state.items()}, *numpy_inputs,
                                                   t.numpy())
        else:
            loss, ours = module.loss_and_gradients(state, *inputs, t)
        assert relative_error(loss, want) <= TOLERANCE, backend
        for key, grad in grads.items():
            assert relative_error(ours[key], grad) <= TOLERANCE, (backend, key)


# -- the acceptance model: nn.Transformer(16, 2, 2 + 2 layers, ff 32) with embeddings and a head -------------
PAD, SRC_VOCAB, TGT_VOCAB, SRC_LEN, TGT_LEN = 0, 13, 11, 7, 6


class TorchSeq2Seq(nn.Module):
    def __init__(self):
        super().__init__()
        self.src_emb = nn.Embedding(SRC_VOCAB, 16)
        self.tgt_emb = nn.Embedding(TGT_VOCAB, 16)
        self.transformer = nn.Transformer(16, 2, 2, 2, 32, dropout=0.0, batch_first=True)
        self.head = nn.Linear(16, TGT_VOCAB)

    def forward(self, src, tgt, src_pad, tgt_pad):
        mask = nn.Transformer.generate_square_subsequent_mask(TGT_LEN)
        h = self.transformer(self.src_emb(src), self.tgt_emb(tgt), tgt_mask=mask, src_key_padding_mask=src_pad,
                             tgt_key_padding_mask=tgt_pad, memory_key_padding_mask=src_pad, tgt_is_causal=True)
        return self.head(h)


def torch_loss(y, t):
    return TF.cross_entropy(y.reshape(-1, TGT_VOCAB), t.reshape(-1), ignore_index=PAD)


class Seq2Seq(S.Module):  # the same, declared in symprop
    def __init__(self):
        super().__init__()
        self.src_emb = S.Embedding(SRC_VOCAB, 16)
        self.tgt_emb = S.Embedding(TGT_VOCAB, 16)
        self.transformer = S.Transformer(16, 2, 2, 2, 32)
        self.head = S.Linear(16, TGT_VOCAB)

    def forward(self, src, tgt, src_pad, tgt_pad):
        h = self.transformer(self.src_emb(src), self.tgt_emb(tgt), src_key_padding_mask=src_pad,
                             tgt_key_padding_mask=tgt_pad, memory_key_padding_mask=src_pad)
        return self.head(h)


INPUTS = {"src": (SRC_LEN,), "tgt": (TGT_LEN,), "src_pad": (SRC_LEN,), "tgt_pad": (TGT_LEN,)}


def batch(generator, n=3):
    src = torch.randint(1, SRC_VOCAB, (n, SRC_LEN), generator=generator)
    tgt = torch.randint(1, TGT_VOCAB, (n, TGT_LEN), generator=generator)
    src_pad = torch.arange(SRC_LEN) >= torch.tensor([[SRC_LEN], [4], [2]])[:n]   # padding at the end
    tgt_pad = torch.arange(TGT_LEN) >= torch.tensor([[TGT_LEN], [5], [3]])[:n]
    t = torch.randint(1, TGT_VOCAB, (n, TGT_LEN), generator=generator)
    t[tgt_pad] = PAD  # padded targets are ignored
    t[0, 2] = PAD
    return (src, tgt, src_pad, tgt_pad), t


@pytest.mark.parametrize("front_end", ["declared", "from_torch"])
def test_the_transformer_with_padding_and_ignore_index(front_end, tmp_path):
    torch.manual_seed(0)
    reference = TorchSeq2Seq().double()
    if front_end == "declared":
        model = S.Model(Seq2Seq(), S.CrossEntropyLoss(ignore_index=PAD), inputs=INPUTS, name="seq2seq")
    else:
        model = S.from_torch(reference, torch_loss, inputs=INPUTS, name="seq2seq")
    assert list(model.parameters) == [k for k, _ in reference.named_parameters()]
    assert model.mask_inputs == ["src_pad", "tgt_pad"] and model.index_ranges == {"src": SRC_VOCAB,
                                                                                 "tgt": TGT_VOCAB}
    inputs, t = batch(torch.Generator().manual_seed(1))
    want = torch_loss(reference(*inputs), t)
    want.backward()
    grads = {k: p.grad for k, p in reference.named_parameters()}
    state = {k: v.detach().clone() for k, v in reference.state_dict().items()}
    agree(generated(model, tmp_path), state, inputs, t, want.detach(), grads)


# -- the decoder layer and the embedding, over a grid ------------------------------------------------------------
GRID = list(itertools.product((False, True), ("relu", "gelu"), (False, True), (1, 7)))


@pytest.mark.parametrize("norm_first,activation,masked,length", GRID,
                         ids=[f"{'pre' if a else 'post'}-{b}-{'pad' if c else 'full'}-{d}" for a, b, c, d in GRID])
def test_decoder_layer_and_embedding(norm_first, activation, masked, length, tmp_path):
    class TorchDecoder(nn.Module):
        def __init__(self):
            super().__init__()
            self.emb = nn.Embedding(9, 8)
            self.layer = nn.TransformerDecoderLayer(8, 2, 16, dropout=0.0, activation=activation, batch_first=True,
                                                    norm_first=norm_first)

        def forward(self, tokens, memory, pad):
            mask = nn.Transformer.generate_square_subsequent_mask(length)
            return self.layer(self.emb(tokens), memory, tgt_mask=mask, tgt_is_causal=True,
                              memory_key_padding_mask=pad if masked else None)

    class Decoder(S.Module):
        def __init__(self):
            super().__init__()
            self.emb = S.Embedding(9, 8)
            self.layer = S.TransformerDecoderLayer(8, 2, 16, activation, norm_first)

        def forward(self, tokens, memory, pad):
            return self.layer(self.emb(tokens), memory, memory_key_padding_mask=pad if masked else None)

    torch.manual_seed(2)
    reference = TorchDecoder().double()
    inputs = {"tokens": (length,), "memory": (5, 8)} | ({"pad": (5,)} if masked else {})
    net = Decoder()
    if not masked:
        net.forward = lambda tokens, memory: Decoder.forward(net, tokens, memory, None)
    model = S.Model(net, S.MSELoss(), inputs=inputs, name="decoder")
    generator = torch.Generator().manual_seed(3)
    tokens = torch.randint(0, 9, (4, length), generator=generator)
    memory = torch.randn(4, 5, 8, generator=generator, dtype=torch.float64)
    pad = torch.arange(5) >= torch.tensor([[5], [3], [1], [4]])
    t = torch.randn(4, length, 8, generator=generator, dtype=torch.float64)
    want = TF.mse_loss(reference(tokens, memory, pad), t)
    want.backward()
    grads = {k: p.grad for k, p in reference.named_parameters()}
    assert list(model.parameters) == list(grads)
    state = {k: v.detach().clone() for k, v in reference.state_dict().items()}
    agree(generated(model, tmp_path), state, [tokens, memory] + ([pad] if masked else []), t, want.detach(), grads)


def test_sinusoidal_positions_are_attention_is_all_you_need(tmp_path):
    class Model(S.Module):
        def __init__(self):
            super().__init__()
            self.emb, self.positions = S.Embedding(5, 6), S.PositionalEncoding(4, 6, learned=False)

        def forward(self, tokens):
            return self.positions(self.emb(tokens))

    model = S.Model(Model(), S.MSELoss(), inputs={"tokens": (4,)}, name="sinusoid")
    modules = generated(model, tmp_path)
    params = {"emb.weight": np.zeros((5, 6))}
    table = modules["numpy"].forward(params, np.zeros((1, 4), dtype=np.int64))[0]
    for pos, i in itertools.product(range(4), range(3)):
        angle = pos / 10000 ** (2 * i / 6)
        assert abs(table[pos, 2 * i] - math.sin(angle)) < 1e-15 and abs(table[pos, 2 * i + 1] - math.cos(angle)) < 1e-15
    torch_table = modules["torch"].forward({"emb.weight": torch.zeros(5, 6, dtype=torch.float64)},
                                           torch.zeros(1, 4, dtype=torch.int64))[0]
    assert np.abs(torch_table.numpy() - table).max() < 1e-15


def test_dropout_is_refused_in_one_line():
    with pytest.raises(S.SymPropError, match="dropout must be 0.0"):
        S.TransformerEncoderLayer(8, 2, 16, dropout=0.1)
    with pytest.raises(S.SymPropError) as error:
        S.from_torch(nn.Sequential(nn.TransformerEncoderLayer(8, 2, 16, batch_first=True)), nn.MSELoss(),
                     inputs={"x": (3, 8)})
    assert str(error.value) == "0: TransformerEncoderLayer: dropout must be 0.0, which is what symprop derives"


# -- the character-level language model -------------------------------------------------------------------------
class TorchCharLM(nn.Module):
    """examples/char_lm.toml, written in torch independently."""

    def __init__(self):
        super().__init__()
        self.add_module("0", nn.Embedding(71, 32))
        self.positions = nn.Parameter(torch.zeros(32, 32))
        for i in (2, 3):
            self.add_module(str(i), nn.TransformerEncoderLayer(32, 4, 64, dropout=0.0, batch_first=True,
                                                               norm_first=True))
        self.add_module("4", nn.LayerNorm(32))
        self.add_module("5", nn.Linear(32, 71))

    def forward(self, x):
        h = getattr(self, "0")(x) + self.positions
        mask = nn.Transformer.generate_square_subsequent_mask(32, dtype=h.dtype)
        for i in ("2", "3"):
            h = getattr(self, i)(h, src_mask=mask, is_causal=True)
        return getattr(self, "5")(getattr(self, "4")(h))


def test_char_lm_trains_as_torch_does_for_100_steps(tmp_path):
    model = S.load_spec(ROOT / "examples" / "char_lm.toml")
    module = generated(model, tmp_path)["numpy"]
    params = module.init_params(0)
    reference = TorchCharLM().double()
    state = {("positions" if key == "1.weight" else key): torch.from_numpy(value.copy())
             for key, value in params.items()}
    reference.load_state_dict(state)
    optimizer = torch.optim.Adam(reference.parameters(), lr=3e-3)
    text = (ROOT / "examples" / "data" / "constitution.txt").read_text()
    alphabet = sorted(set(text))
    ids = np.array([alphabet.index(c) for c in text[:4000]])
    rng, adam = np.random.default_rng(0), None
    for _ in range(100):
        starts = rng.integers(0, len(ids) - 33, size=4)
        x = ids[starts[:, None] + np.arange(32)]
        t = ids[starts[:, None] + np.arange(1, 33)]
        params, loss, adam = module.adam_step(params, x, t, lr=3e-3, state=adam)
        optimizer.zero_grad()
        want = TF.cross_entropy(reference(torch.from_numpy(x)).reshape(-1, 71), torch.from_numpy(t).reshape(-1))
        want.backward()
        optimizer.step()
        assert abs(loss - want.item()) <= 1e-8 * abs(want.item())
    for key, value in params.items():
        theirs = reference.state_dict()["positions" if key == "1.weight" else key]
        assert relative_error(value, theirs) <= 1e-8, key


def test_train_and_sample_from_the_command_line(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    text = tmp_path / "text.txt"
    text.write_text((ROOT / "examples" / "data" / "constitution.txt").read_text()[:3000])
    spec = ROOT / "examples" / "char_lm.toml"
    result = CliRunner().invoke(main, ["train", str(spec), "--text", str(text), "--epochs", "1", "--optimizer",
                                       "adam", "--batch-size", "32"])
    assert result.exit_code == 0, result.output
    assert "held-out loss" in result.output and "per character" in result.output
    assert (tmp_path / "trained" / "char_lm_params.npz").exists()
    result = CliRunner().invoke(main, ["sample", str(spec), "--prompt", "We the", "--length", "40"])
    assert result.exit_code == 0, result.output
    line = result.stdout.rstrip("\n")
    assert line.startswith("We the") and len(line) == len("We the") + 40, line
    result = CliRunner().invoke(main, ["sample", str(spec), "--prompt", "~~~"])
    assert result.exit_code == 2 and "never saw the characters '~'" in result.output


def test_a_token_model_given_a_csv_is_told_to_train_on_text(tmp_path):
    data = tmp_path / "ids.csv"
    data.write_text(",".join(f"c{i}" for i in range(33)) + "\n" + ",".join(["1"] * 33) + "\n")
    result = CliRunner().invoke(main, ["train", str(ROOT / "examples" / "char_lm.toml"), "--data", str(data)])
    assert result.exit_code == 2 and "--text" in result.output and "Traceback" not in result.output


class TorchEncoderLM(nn.Module):
    """nn.TransformerEncoder over an embedding, as a torch user writes a language model."""

    def __init__(self):
        super().__init__()
        self.emb = nn.Embedding(10, 8)
        layer = nn.TransformerEncoderLayer(8, 2, 16, dropout=0.0, batch_first=True, activation="gelu")
        self.encoder = nn.TransformerEncoder(layer, num_layers=2, norm=nn.LayerNorm(8), enable_nested_tensor=False)
        self.head = nn.Linear(8, 10)

    def forward(self, tokens, pad):
        mask = nn.Transformer.generate_square_subsequent_mask(5)
        return self.head(self.encoder(self.emb(tokens), mask=mask, src_key_padding_mask=pad, is_causal=True))


@pytest.mark.parametrize("front_end", ["declared", "from_torch"])
def test_transformer_encoder_stack(front_end, tmp_path):
    class EncoderLM(S.Module):
        def __init__(self):
            super().__init__()
            self.emb = S.Embedding(10, 8)
            layer = S.TransformerEncoderLayer(8, 2, 16, "gelu", causal=True)
            self.encoder = S.TransformerEncoder(layer, 2, S.LayerNorm(8))
            self.head = S.Linear(8, 10)

        def forward(self, tokens, pad):
            return self.head(self.encoder(self.emb(tokens), src_key_padding_mask=pad))

    torch.manual_seed(5)
    reference = TorchEncoderLM().double()

    def loss(y, t):
        return TF.cross_entropy(y.transpose(1, 2), t)  # torch's layout: classes on axis 1

    inputs = {"tokens": (5,), "pad": (5,)}
    model = S.Model(EncoderLM(), loss, inputs=inputs, name="encoder_lm") if front_end == "declared" else \
        S.from_torch(reference, loss, inputs=inputs, name="encoder_lm")
    assert list(model.parameters) == [k for k, _ in reference.named_parameters()]
    generator = torch.Generator().manual_seed(6)
    tokens = torch.randint(0, 10, (3, 5), generator=generator)
    pad = torch.arange(5) >= torch.tensor([[5], [3], [4]])
    t = torch.randint(0, 10, (3, 5), generator=generator)
    want = loss(reference(tokens, pad), t)
    want.backward()
    grads = {k: p.grad for k, p in reference.named_parameters()}
    state = {k: v.detach().clone() for k, v in reference.state_dict().items()}
    agree(generated(model, tmp_path), state, [tokens, pad], t, want.detach(), grads)
