"""from_torch(module, loss, example_inputs=...) on models written the way public projects write them: traced by
torch.export as written (sizes read in Python, asserts, registered buffers, split heads, masked_fill), read op by op
through the registry, and checked against torch.autograd in float64, in both generated modules."""

from __future__ import annotations

import math
import re
import warnings

import pytest
import torch
from conftest import generated_modules
from torch import nn
from torch.nn import functional as F

import symprop as S
from symprop.check import relative_error

TOLERANCE = 1e-10


def agree(model, net, inputs: tuple, t, loss, tmp_path, sequence_first=False):
    """The generated modules' loss and gradients against torch's, on the source module's own state_dict (inputs and
    t batch first; `sequence_first`: torch's module takes them transposed)."""
    net.zero_grad()
    want = loss(net(*(x.T for x in inputs)), t.T) if sequence_first else loss(net(*inputs), t)
    want.backward()
    grads = {key: p.grad for key, p in net.named_parameters()}
    state = {key: value.detach().clone() for key, value in net.state_dict().items()}
    for backend, module in generated_modules(model, tmp_path).items():
        if backend == "numpy":
            ours_loss, ours = module.loss_and_gradients({k: v.numpy() for k, v in state.items() if k in grads},
                                                        *(x.numpy() for x in inputs), t.numpy())
        else:
            ours_loss, ours = module.loss_and_gradients({k: v for k, v in state.items() if k in grads}, *inputs, t)
        assert relative_error(ours_loss, want.detach()) <= TOLERANCE, backend
        for key, grad in grads.items():
            assert relative_error(ours[key], grad) <= TOLERANCE, (backend, key)


# -- the tutorials' quickstart network: nn.Flatten, then a Linear/ReLU stack ---------------------------------------
class NeuralNetwork(nn.Module):
    def __init__(self):
        super().__init__()
        self.flatten = nn.Flatten()
        self.linear_relu_stack = nn.Sequential(nn.Linear(6 * 6, 24), nn.ReLU(), nn.Linear(24, 24), nn.ReLU(),
                                               nn.Linear(24, 10))

    def forward(self, x):
        x = self.flatten(x)
        logits = self.linear_relu_stack(x)
        return logits


def test_the_quickstart_network(tmp_path):
    torch.manual_seed(0)
    net = NeuralNetwork().double()
    x, t = torch.randn(5, 6, 6, dtype=torch.float64), torch.randint(0, 10, (5,))
    model = S.from_torch(net, nn.CrossEntropyLoss(), example_inputs=(x,), name="quickstart")
    assert model.inputs == {"x": (6, 6)}
    agree(model, net, (x,), t, nn.CrossEntropyLoss(), tmp_path)


# -- makemore's MLP: embeddings of a context of characters, concatenated, through tanh ----------------------------
class MLP(nn.Module):
    def __init__(self, vocab_size=11, block_size=3, n_embd=5, n_hidden=16):
        super().__init__()
        self.block_size, self.vocab_size = block_size, vocab_size
        self.wte = nn.Embedding(vocab_size, n_embd)
        self.mlp = nn.Sequential(nn.Linear(block_size * n_embd, n_hidden), nn.Tanh(), nn.Linear(n_hidden, vocab_size))

    def forward(self, idx):
        embs = []
        for k in range(self.block_size):  # a Python loop over positions: unrolled by the export
            embs.append(self.wte(idx[:, k]))
        x = torch.cat(embs, -1)
        return self.mlp(x)


def test_makemores_mlp_with_a_loss_function(tmp_path):
    torch.manual_seed(1)
    net = MLP().double()
    idx, t = torch.randint(0, 11, (6, 3)), torch.randint(0, 11, (6,))

    def loss(logits, targets):
        return F.cross_entropy(logits, targets)

    model = S.from_torch(net, loss, example_inputs=(idx,), example_target=t, name="makemore_mlp")
    agree(model, net, (idx,), t, loss, tmp_path)


# -- minGPT's attention: one projection split in three, heads by view/transpose, a registered tril buffer ---------
class CausalSelfAttention(nn.Module):
    def __init__(self, n_embd=8, n_head=2, block_size=4):
        super().__init__()
        assert n_embd % n_head == 0
        self.c_attn = nn.Linear(n_embd, 3 * n_embd)
        self.c_proj = nn.Linear(n_embd, n_embd)
        self.register_buffer("bias", torch.tril(torch.ones(block_size, block_size))
                             .view(1, 1, block_size, block_size))
        self.n_head, self.n_embd = n_head, n_embd

    def forward(self, x):
        B, T, C = x.size()
        q, k, v = self.c_attn(x).split(self.n_embd, dim=2)
        k = k.view(B, T, self.n_head, C // self.n_head).transpose(1, 2)
        q = q.view(B, T, self.n_head, C // self.n_head).transpose(1, 2)
        v = v.view(B, T, self.n_head, C // self.n_head).transpose(1, 2)
        att = (q @ k.transpose(-2, -1)) * (1.0 / math.sqrt(k.size(-1)))
        att = att.masked_fill(self.bias[:, :, :T, :T] == 0, float("-inf"))
        att = F.softmax(att, dim=-1)
        y = att @ v
        y = y.transpose(1, 2).contiguous().view(B, T, C)
        return self.c_proj(y)


class Block(nn.Module):
    def __init__(self, n_embd=8, sdpa=False):
        super().__init__()
        self.ln_1, self.ln_2 = nn.LayerNorm(n_embd), nn.LayerNorm(n_embd)
        self.attn = FlashAttention(n_embd) if sdpa else CausalSelfAttention(n_embd)
        self.mlp = nn.ModuleDict(dict(c_fc=nn.Linear(n_embd, 4 * n_embd), c_proj=nn.Linear(4 * n_embd, n_embd),
                                      act=nn.GELU()))

    def forward(self, x):
        x = x + self.attn(self.ln_1(x))
        m = self.mlp
        return x + m.c_proj(m.act(m.c_fc(self.ln_2(x))))


def test_mingpts_attention_block(tmp_path):
    torch.manual_seed(2)
    net = Block().double()
    x, t = torch.randn(3, 4, 8, dtype=torch.float64), torch.randn(3, 4, 8, dtype=torch.float64)
    model = S.from_torch(net, nn.MSELoss(), example_inputs=(x,), name="mingpt_block")
    agree(model, net, (x,), t, nn.MSELoss(), tmp_path)


class HeadsJoined(nn.Module):
    """Heads flattened and joined along the features, one of them from a (batch, head, position, width) view."""

    def __init__(self):
        super().__init__()
        self.by_head, self.by_position, self.out = nn.Linear(6, 6), nn.Linear(6, 6), nn.Linear(12, 5)

    def forward(self, x):
        B, T, C = x.size()
        u = self.by_head(x).view(B, T, 2, 3).transpose(1, 2)
        v = self.by_position(x).view(B, T, 2, 3)
        y = torch.cat([u.transpose(1, 2).reshape(B, T, C), v.reshape(B, T, C)], dim=-1)
        return self.out(torch.tanh(y))


def test_flattened_heads_joined_along_the_features(tmp_path):
    """Operands that flatten their last axes, joined along the flattened one, are joined first and flattened after (a
    view): the same numbers, and one copy of each where the flattening of a transposed view copied it too."""
    torch.manual_seed(3)
    net = HeadsJoined().double()
    x, t = torch.randn(3, 4, 6, dtype=torch.float64), torch.randn(3, 4, 5, dtype=torch.float64)
    model = S.from_torch(net, nn.MSELoss(), example_inputs=(x,), name="heads_joined")
    agree(model, net, (x,), t, nn.MSELoss(), tmp_path)
    code = S.derive_network(model).render("torch")
    assert re.search(r"= torch\.cat\(\[\w+, \w+\], dim=2\)\n(.*\n)?\s+\w+ = \w+\.reshape\(-1, 4, 12\)", code)


# -- nanoGPT's attention: F.scaled_dot_product_attention, causal ---------------------------------------------------
class FlashAttention(nn.Module):
    def __init__(self, n_embd=8, n_head=2):
        super().__init__()
        self.c_attn, self.c_proj = nn.Linear(n_embd, 3 * n_embd), nn.Linear(n_embd, n_embd)
        self.n_head, self.n_embd = n_head, n_embd

    def forward(self, x):
        B, T, C = x.size()
        q, k, v = self.c_attn(x).split(self.n_embd, dim=2)
        q, k, v = (z.view(B, T, self.n_head, C // self.n_head).transpose(1, 2) for z in (q, k, v))
        y = F.scaled_dot_product_attention(q, k, v, attn_mask=None, dropout_p=0.0, is_causal=True)
        return self.c_proj(y.transpose(1, 2).contiguous().view(B, T, C))


class TinyGPT(nn.Module):
    """Token and position embeddings, blocks, a final norm and an lm_head, as nanoGPT builds its GPT."""

    def __init__(self, vocab_size=13, block_size=4, n_embd=8, n_layer=2):
        super().__init__()
        self.block_size = block_size
        self.transformer = nn.ModuleDict(dict(wte=nn.Embedding(vocab_size, n_embd),
                                              wpe=nn.Embedding(block_size, n_embd),
                                              h=nn.ModuleList([Block(n_embd, sdpa=True) for _ in range(n_layer)]),
                                              ln_f=nn.LayerNorm(n_embd)))
        self.lm_head = nn.Linear(n_embd, vocab_size, bias=False)

    def forward(self, idx):
        b, t = idx.size()
        assert t <= self.block_size, f"Cannot forward sequence of length {t}, block size is only {self.block_size}"
        pos = torch.arange(0, t, dtype=torch.long, device=idx.device)
        x = self.transformer.wte(idx) + self.transformer.wpe(pos)
        for block in self.transformer.h:
            x = block(x)
        return self.lm_head(self.transformer.ln_f(x))


def test_a_gpt_with_flash_attention_tied_weights_and_a_loss_over_tokens(tmp_path):
    torch.manual_seed(3)
    net = TinyGPT().double()
    net.lm_head.weight = net.transformer.wte.weight  # tied, as nanoGPT ties them: one parameter, both uses summed
    idx, t = torch.randint(0, 13, (3, 4)), torch.randint(0, 13, (3, 4))

    def loss(logits, targets):
        return F.cross_entropy(logits.view(-1, logits.size(-1)), targets.view(-1), ignore_index=-1)

    model = S.from_torch(net, loss, example_inputs=(idx,), example_target=t, name="tiny_gpt")
    agree(model, net, (idx,), t, loss, tmp_path)


# -- nanoGPT's forward: (logits, loss), the loss computed by forward itself when targets are given -------------------
class GPT(TinyGPT):
    def forward(self, idx, targets=None):
        b, t = idx.size()
        assert t <= self.block_size, f"Cannot forward sequence of length {t}, block size is only {self.block_size}"
        pos = torch.arange(0, t, dtype=torch.long, device=idx.device).unsqueeze(0)  # (1, t), as minGPT has it
        x = self.transformer.wte(idx) + self.transformer.wpe(pos)
        for block in self.transformer.h:
            x = block(x)
        x = self.transformer.ln_f(x)
        if targets is not None:
            logits = self.lm_head(x)
            loss = F.cross_entropy(logits.view(-1, logits.size(-1)), targets.view(-1), ignore_index=-1)
        else:
            logits = self.lm_head(x[:, [-1], :])
            loss = None
        return logits, loss


def test_a_gpt_that_computes_its_own_loss(tmp_path):
    """from_torch(gpt, lambda out: out[1], example_inputs=(idx, targets)): the generated loss_and_gradients takes
    forward's inputs as they are, (params, idx, targets)."""
    torch.manual_seed(6)
    net = GPT().double()
    net.lm_head.weight = net.transformer.wte.weight
    idx, targets = torch.randint(0, 13, (3, 4)), torch.randint(0, 13, (3, 4))
    model = S.from_torch(net, lambda out: out[1], example_inputs=(idx, targets), name="gpt_own_loss")
    assert list(model.inputs) == ["idx"]
    agree(model, net, (idx,), targets, lambda out, t: net(idx, t)[1], tmp_path)


def test_an_own_loss_beside_a_target_given_apart(tmp_path):
    """from_torch(gpt, lambda out, t: out[1], example_inputs=(idx, targets), example_target=targets): forward's
    targets are an input that its cross-entropy reads as classes; the torch module made them numbers, and its one-hot
    crashed on them."""
    torch.manual_seed(6)
    net = GPT().double()
    idx, targets = torch.randint(0, 13, (3, 4)), torch.randint(0, 13, (3, 4))
    targets[1, 2] = -1  # ignore_index
    model = S.from_torch(net, lambda out, t: out[1], example_inputs=(idx, targets), example_target=targets,
                         name="gpt_own_loss_beside_t")
    agree(model, net, (idx, targets), targets, lambda out, t: out[1], tmp_path)


# -- makemore's RNN: a cell called in a Python loop over positions, a learned start state expanded to the batch --------
class RNN(nn.Module):
    def __init__(self, vocab_size=11, n_embd=6, n_embd2=8):
        super().__init__()
        self.start = nn.Parameter(torch.zeros(1, n_embd2))
        self.wte = nn.Embedding(vocab_size, n_embd)
        self.cell = nn.Linear(n_embd + n_embd2, n_embd2)
        self.lm_head = nn.Linear(n_embd2, vocab_size)

    def forward(self, idx):
        b, t = idx.size()
        emb = self.wte(idx)
        hprev = self.start.expand((b, -1))
        hiddens = []
        for i in range(t):
            hprev = F.tanh(self.cell(torch.cat([emb[:, i, :], hprev], dim=1)))
            hiddens.append(hprev)
        return self.lm_head(torch.stack(hiddens, 1))


def test_makemores_rnn_unrolled_at_the_examples_length(tmp_path):
    torch.manual_seed(4)
    net = RNN().double()
    idx, t = torch.randint(0, 11, (3, 4)), torch.randint(0, 11, (3, 4))

    def loss(logits, targets):
        return F.cross_entropy(logits.view(-1, logits.size(-1)), targets.view(-1), ignore_index=-1)

    model = S.from_torch(net, loss, example_inputs=(idx,), example_target=t, name="makemore_rnn")
    agree(model, net, (idx,), t, loss, tmp_path)


# -- torch's recurrent layers, lowered by torch's own decomposition table: a GRU language model, an LSTM on top --------
class RecurrentLM(nn.Module):
    def __init__(self, vocab_size=7, n_embd=5, hidden=8):
        super().__init__()
        self.wte = nn.Embedding(vocab_size, n_embd)
        self.gru = nn.GRU(n_embd, hidden, batch_first=True)
        self.lstm = nn.LSTM(hidden, 6, batch_first=True)
        self.lm_head = nn.Linear(6, vocab_size)

    def forward(self, idx):
        out, _ = self.gru(self.wte(idx))
        out, (h, c) = self.lstm(out)
        return self.lm_head(out)


def test_nn_gru_and_nn_lstm_unrolled_by_torchs_decompositions(tmp_path):
    torch.manual_seed(9)
    net = RecurrentLM().double().eval()
    idx, t = torch.randint(0, 7, (3, 4)), torch.randint(0, 7, (3, 4))

    def loss(logits, targets):
        return F.cross_entropy(logits.view(-1, logits.size(-1)), targets.view(-1))

    model = S.from_torch(net, loss, example_inputs=(idx,), example_target=t, name="recurrent_lm")
    agree(model, net, (idx,), t, loss, tmp_path)


class LastStep(nn.Module):
    """A two-layer tanh nn.RNN classifying a sequence by its last step, as the tutorials' name classifier does."""

    def __init__(self):
        super().__init__()
        self.rnn = nn.RNN(5, 8, num_layers=2, batch_first=True)
        self.fc = nn.Linear(8, 3)

    def forward(self, x):
        out, hidden = self.rnn(x)
        return self.fc(out[:, -1, :])


def test_a_two_layer_nn_rnn(tmp_path):
    torch.manual_seed(14)
    net = LastStep().double().eval()
    x, t = torch.randn(3, 4, 5, dtype=torch.float64), torch.randint(0, 3, (3,))
    model = S.from_torch(net, nn.CrossEntropyLoss(), example_inputs=(x,), name="last_step")
    agree(model, net, (x,), t, nn.CrossEntropyLoss(), tmp_path)


# -- torch's own encoder layer, with its default dropout, in eval mode -----------------------------------------------
class Classifier(nn.Module):
    def __init__(self):
        super().__init__()
        self.encoder = nn.TransformerEncoderLayer(8, 2, 16, batch_first=True)  # dropout 0.1: the identity in eval
        self.fc = nn.Linear(8, 3)

    def forward(self, x):
        return self.fc(self.encoder(x).mean(dim=1))


def test_torchs_encoder_layer_in_eval_mode(tmp_path):
    torch.manual_seed(5)
    net = Classifier().double().eval()
    x, t = torch.randn(3, 4, 8, dtype=torch.float64), torch.randint(0, 3, (3,))
    model = S.from_torch(net, nn.CrossEntropyLoss(), example_inputs=(x,), name="encoder_eval")
    agree(model, net, (x,), t, nn.CrossEntropyLoss(), tmp_path)


# -- torch's nn.Transformer as the translation tutorial drives it: a positional-encoding buffer sliced by the length,
# the target's causal mask made in forward by generate_square_subsequent_mask -------------------------------------
class PositionalEncoding(nn.Module):
    def __init__(self, d_model, dropout=0.1, max_len=16, batch_first=True):
        super().__init__()
        self.dropout = nn.Dropout(p=dropout)
        self.batch_first = batch_first
        position = torch.arange(max_len).unsqueeze(1)
        div_term = torch.exp(torch.arange(0, d_model, 2) * (-math.log(10000.0) / d_model))
        pe = torch.zeros(max_len, 1, d_model)
        pe[:, 0, 0::2] = torch.sin(position * div_term)
        pe[:, 0, 1::2] = torch.cos(position * div_term)
        self.register_buffer("pe", pe.transpose(0, 1) if batch_first else pe)

    def forward(self, x):
        return self.dropout(x + (self.pe[:, :x.size(1)] if self.batch_first else self.pe[:x.size(0)]))


class Seq2SeqTransformer(nn.Module):
    def __init__(self, vocab_size=11, d_model=8, batch_first=True):
        super().__init__()
        self.src_tok_emb = nn.Embedding(vocab_size, d_model)
        self.tgt_tok_emb = nn.Embedding(vocab_size, d_model)
        self.positional_encoding = PositionalEncoding(d_model, batch_first=batch_first)
        self.transformer = nn.Transformer(d_model=d_model, nhead=2, num_encoder_layers=1, num_decoder_layers=1,
                                          dim_feedforward=16, batch_first=batch_first)
        self.generator = nn.Linear(d_model, vocab_size)
        self.batch_first = batch_first

    def forward(self, src, tgt):
        length = tgt.size(1) if self.batch_first else tgt.size(0)
        tgt_mask = nn.Transformer.generate_square_subsequent_mask(length, dtype=torch.float64)
        src_emb = self.positional_encoding(self.src_tok_emb(src) * math.sqrt(8))
        tgt_emb = self.positional_encoding(self.tgt_tok_emb(tgt) * math.sqrt(8))
        return self.generator(self.transformer(src_emb, tgt_emb, tgt_mask=tgt_mask))


@pytest.mark.filterwarnings("ignore:enable_nested_tensor is True")  # torch's, on building it sequence first
@pytest.mark.parametrize("batch_first", [True, False])
def test_torchs_transformer_with_a_causal_mask_made_in_forward(batch_first, tmp_path):
    """Sequence first (batch_first=False), the arrays of the generated modules are batch first all the same."""
    torch.manual_seed(7)
    net = Seq2SeqTransformer(batch_first=batch_first).double().eval()
    src, tgt, t = torch.randint(0, 11, (3, 5)), torch.randint(0, 11, (3, 4)), torch.randint(0, 11, (3, 4))

    def loss(logits, tgt_out):
        return F.cross_entropy(logits.reshape(-1, logits.shape[-1]), tgt_out.reshape(-1))

    if batch_first:
        model = S.from_torch(net, loss, example_inputs=(src, tgt), example_target=t, name="seq2seq")
        agree(model, net, (src, tgt), t, loss, tmp_path)
    else:
        model = S.from_torch(net, loss, example_inputs=(src.T, tgt.T), example_target=t.T, name="seq2seq_first")
        assert model.inputs == {"src": (5,), "tgt": (4,)}
        agree(model, net, (src, tgt), t, loss, tmp_path, sequence_first=True)


# -- buffers of numbers: a normalization's mean and std, as vision tutorials register them -------------------------
class Normalized(nn.Module):
    def __init__(self):
        super().__init__()
        self.register_buffer("mean", torch.tensor([0.485, 0.456, 0.406]))
        self.register_buffer("std", torch.tensor([0.229, 0.224, 0.225]))
        self.fc = nn.Linear(3, 2)

    def forward(self, x):
        return self.fc((x - self.mean) / self.std)


def test_buffers_of_numbers_are_constants_written_into_the_code(tmp_path):
    torch.manual_seed(8)
    net = Normalized().double()
    x, t = torch.rand(4, 3, dtype=torch.float64), torch.randint(0, 2, (4,))
    model = S.from_torch(net, nn.CrossEntropyLoss(), example_inputs=(x,), name="normalized")
    agree(model, net, (x,), t, nn.CrossEntropyLoss(), tmp_path)
    code = (tmp_path / "normalized_numpy.py").read_text()
    assert all(repr(float(v)) in code for v in (*net.mean, *net.std))  # exactly, once, at the top


# -- random numbers drawn in forward: the VAE of pytorch/examples (randn_like), dropout in training mode ------------
class VAE(nn.Module):
    def __init__(self, width=12, hidden=8, latent=3):
        super().__init__()
        self.width = width
        self.fc1, self.fc21, self.fc22 = nn.Linear(width, hidden), nn.Linear(hidden, latent), nn.Linear(hidden, latent)
        self.fc3, self.fc4 = nn.Linear(latent, hidden), nn.Linear(hidden, width)

    def encode(self, x):
        h1 = F.relu(self.fc1(x))
        return self.fc21(h1), self.fc22(h1)

    def reparameterize(self, mu, logvar):
        std = torch.exp(0.5 * logvar)
        eps = torch.randn_like(std)
        return mu + eps * std

    def decode(self, z):
        h3 = F.relu(self.fc3(z))
        return torch.sigmoid(self.fc4(h3))

    def forward(self, x):
        mu, logvar = self.encode(x.view(-1, self.width))
        z = self.reparameterize(mu, logvar)
        return self.decode(z), mu, logvar


def vae_loss(recon_x, x, mu, logvar):
    bce = F.binary_cross_entropy(recon_x, x.view(-1, 12), reduction="sum")
    kld = -0.5 * torch.sum(1 + logvar - mu.pow(2) - logvar.exp())
    return bce + kld


def agree_given_draws(model, net, x, t, loss, draws: dict, seed: int, tmp_path):
    """Torch draws its random numbers from `seed`; the generated modules are given the same draws as inputs."""
    net.zero_grad()
    torch.manual_seed(seed)
    want = loss(net(x), t)
    want.backward()
    grads = {key: p.grad for key, p in net.named_parameters()}
    state = {key: value.detach() for key, value in net.state_dict().items()}
    assert list(model.inputs)[1:] == list(draws)
    for backend, module in generated_modules(model, tmp_path).items():
        params, arrays = state, (x, *draws.values(), t)
        if backend == "numpy":
            params, arrays = {k: v.numpy() for k, v in state.items()}, tuple(a.numpy() for a in arrays)
        ours_loss, ours = module.loss_and_gradients(params, *arrays)
        assert relative_error(ours_loss, want.detach()) <= TOLERANCE, backend
        for key, grad in grads.items():
            assert relative_error(ours[key], grad) <= TOLERANCE, (backend, key)


def test_a_vae_whose_noise_is_an_input(tmp_path):
    """forward returns (recon, mu, logvar) and the loss reads all three; randn_like's noise is an input."""
    torch.manual_seed(10)
    net = VAE().double()
    x = torch.rand(4, 12, dtype=torch.float64)

    def loss(out, t):
        return vae_loss(*out[:1], t, *out[1:])

    model = S.from_torch(net, loss, example_inputs=(x,), example_target=x, name="vae")
    torch.manual_seed(11)
    noise = torch.randn(4, 3, dtype=torch.float64)  # what randn_like draws first after seeding
    agree_given_draws(model, net, x, x, loss, {"noise": noise}, 11, tmp_path)


@pytest.mark.parametrize("inplace", [False, True])
def test_dropout_in_training_mode_takes_its_mask(tmp_path, inplace):
    """nn.Dropout(inplace=True) too (aten.dropout_: it was refused as if p had to be 0)."""
    torch.manual_seed(12)
    net = nn.Sequential(nn.Linear(5, 6), nn.Dropout(0.25, inplace=inplace), nn.ReLU(), nn.Linear(6, 3)).double().train()
    x, t = torch.randn(4, 5, dtype=torch.float64), torch.randint(0, 3, (4,))
    model = S.from_torch(net, nn.CrossEntropyLoss(), example_inputs=(x,), name="dropping")
    torch.manual_seed(13)
    mask = torch.empty(4, 6, dtype=torch.float64).bernoulli_(0.75)  # what dropout draws first after seeding
    agree_given_draws(model, net, x, t, nn.CrossEntropyLoss(), {"dropout_mask": mask}, 13, tmp_path)


# -- label smoothing: the targets mixed with the uniform distribution, (1 - e)·onehot + e/C, as torch mixes them ----
CRITERION = nn.CrossEntropyLoss(label_smoothing=0.1)  # made outside the loss, as training loops make it


@pytest.mark.parametrize("loss", [
    lambda logits, targets: CRITERION(logits.view(-1, logits.size(-1)), targets.view(-1)),
    lambda logits, targets: F.cross_entropy(logits.view(-1, logits.size(-1)), targets.view(-1), ignore_index=0,
                                            label_smoothing=0.2),
], ids=["module", "function-ignore-index"])
def test_label_smoothing(loss, tmp_path):
    torch.manual_seed(15)
    net = nn.Sequential(nn.Embedding(7, 5), nn.Linear(5, 7)).double()
    idx, t = torch.randint(0, 7, (3, 4)), torch.randint(0, 7, (3, 4))
    t[0, 1] = 0
    model = S.from_torch(net, loss, example_inputs=(idx,), example_target=t, name="smoothed")
    agree(model, net, (idx,), t, loss, tmp_path)
    assert "p - tmp0" in (tmp_path / "smoothed_numpy.py").read_text()  # δ = p − the smoothed targets, as in a book


# -- what is refused, in one line --------------------------------------------------------------------------------
def test_an_op_symprop_lacks_is_refused_with_the_users_line():
    class Sorting(nn.Module):
        def __init__(self):
            super().__init__()
            self.fc = nn.Linear(4, 4)

        def forward(self, x):
            return torch.sort(self.fc(x), dim=-1).values

    with pytest.raises(S.SymPropError, match=r"test_export.py:\d+.*aten.sort.default is not supported"):
        S.derive_network(S.from_torch(Sorting(), nn.MSELoss(), example_inputs=(torch.randn(3, 4),)))


class HandBatchNorm(nn.Module):
    """makemore's batch norm, written by hand: in training mode it moves its running statistics under no_grad."""

    def __init__(self, dim, momentum=0.1):
        super().__init__()
        self.momentum, self.gamma, self.beta = momentum, nn.Parameter(torch.ones(dim)), nn.Parameter(torch.zeros(dim))
        self.register_buffer("running_mean", torch.zeros(dim))
        self.register_buffer("running_var", torch.ones(dim))

    def forward(self, x):
        if self.training:
            mean, var = x.mean(0, keepdim=True), x.var(0, keepdim=True)
            with torch.no_grad():
                self.running_mean.mul_(1 - self.momentum).add_(self.momentum * mean.squeeze(0))
                self.running_var.mul_(1 - self.momentum).add_(self.momentum * var.squeeze(0))
        else:
            mean, var = self.running_mean, self.running_var
        return self.gamma * (x - mean) / torch.sqrt(var + 1e-5) + self.beta


class RebindingBatchNorm(HandBatchNorm):
    """The same, giving its buffers new tensors (self.running_mean = ...), as makemore's does."""

    def forward(self, x):
        if not self.training:
            return super().forward(x)
        mean, var = x.mean(0, keepdim=True), x.var(0, keepdim=True)
        with torch.no_grad():
            self.running_mean = (1 - self.momentum) * self.running_mean + self.momentum * mean.squeeze(0)
            self.running_var = (1 - self.momentum) * self.running_var + self.momentum * var.squeeze(0)
        return self.gamma * (x - mean) / torch.sqrt(var + 1e-5) + self.beta


class RebindingWithGradients(HandBatchNorm):
    """The same, rebinding outside torch.no_grad() (as some tutorials write it): no trace of it in torch.export's
    program, whose new tensors nothing reads."""

    def forward(self, x):
        if not self.training:
            return super().forward(x)
        mean, var = x.mean(0), x.var(0)
        self.running_mean = (1 - self.momentum) * self.running_mean + self.momentum * mean.detach()
        self.running_var = (1 - self.momentum) * self.running_var + self.momentum * var.detach()
        return self.gamma * (x - mean) / torch.sqrt(var + 1e-5) + self.beta


class GapsInATable(nn.Module):
    """A buffer with a NaN that forward never reads (a table of numbers with a gap), left as it is."""

    def __init__(self):
        super().__init__()
        self.layer = nn.Linear(3, 2)
        self.register_buffer("table", torch.tensor([float("nan"), 2.0]))

    def forward(self, x):
        return self.layer(x) * self.table[1]


def test_a_buffer_with_a_nan_that_forward_leaves_is_no_changed_buffer(tmp_path):
    """The check of buffers that forward changes compares NaN with NaN as the same entry (it refused this model)."""
    torch.manual_seed(9)
    net = GapsInATable().double()
    x, t = torch.randn(4, 3, dtype=torch.float64), torch.randn(4, 2, dtype=torch.float64)
    model = S.from_torch(net, nn.MSELoss(), example_inputs=(x,), name="gaps_in_a_table")
    agree(model, net, (x,), t, nn.MSELoss(), tmp_path)


@pytest.mark.parametrize("norm", [HandBatchNorm, RebindingBatchNorm, RebindingWithGradients])
def test_running_statistics_of_a_batch_norm_written_by_hand_are_refused_in_training_mode(norm, tmp_path):
    """The generated modules would leave them as they were (only torch's norm layers' are updated): one line, at the
    user's line; in eval() mode, where forward reads them, the model derives."""
    torch.manual_seed(0)
    net = nn.Sequential(nn.Linear(3, 4), norm(4), nn.Tanh(), nn.Linear(4, 2)).double()
    x, t = torch.randn(5, 3, dtype=torch.float64), torch.randn(5, 2, dtype=torch.float64)
    with pytest.raises(S.SymPropError, match=r"test_export.py:\d+.*changes the buffer '1.running_mean'") as refused:
        S.derive_network(S.from_torch(net, nn.MSELoss(), example_inputs=(x,), example_target=t))
    assert "\n" not in str(refused.value)
    net.eval()
    agree(S.from_torch(net, nn.MSELoss(), example_inputs=(x,), example_target=t), net, (x,), t, nn.MSELoss(), tmp_path)


def test_a_hand_written_linear_with_dot_T_agrees_with_autograd():
    """x @ self.weight.T, as hand-written layers write it: torch.export records .T as aten.numpy_T, which was
    refused."""

    class HandWritten(nn.Module):
        def __init__(self):
            super().__init__()
            self.weight = nn.Parameter(torch.randn(5, 4, dtype=torch.float64))
            self.out = nn.Linear(5, 3).double()

        def forward(self, x):
            return self.out(torch.tanh(x @ self.weight.T))

    torch.manual_seed(0)
    net, x, t = HandWritten(), torch.randn(6, 4, dtype=torch.float64), torch.randint(0, 3, (6,))
    model = S.from_torch(net, nn.CrossEntropyLoss(), example_inputs=(x,), example_target=t)
    nn.CrossEntropyLoss()(net(x), t).backward()
    scope = {}
    exec(S.derive_network(model).render("numpy"), scope)  # noqa: S102 (symprop's own generated code)
    _, gradients = scope["loss_and_gradients"]({k: p.detach().numpy() for k, p in net.named_parameters()},
                                               x.numpy(), t.numpy())
    for key, p in net.named_parameters():
        assert abs(gradients[key] - p.grad.numpy()).max() <= 1e-12, key


@pytest.mark.parametrize("change", ["slice", "view"])
def test_a_view_changed_in_place_is_refused_where_forward_reads_its_base_again(change):
    """v = h[:, :4]; v.mul_(2) changes h too: read as its out-of-place twin, h's later read saw the value from before,
    and the loss and gradients were wrong in both modules (off by 0.03 to 0.4)."""

    class InPlaceOnView(nn.Module):
        def __init__(self):
            super().__init__()
            self.a, self.b = nn.Linear(6, 8), nn.Linear(8, 3)

        def forward(self, x):
            h = self.a(x)
            part = h[:, :4] if change == "slice" else h.view(-1, 2, 4)
            part.mul_(2.0)
            return self.b(h)

    with pytest.raises(S.SymPropError, match=r"test_export.py:\d+.*aten.mul_.Tensor changes a value in place"):
        S.from_torch(InPlaceOnView(), nn.CrossEntropyLoss(), example_inputs=(torch.randn(5, 6),),
                     example_target=torch.tensor([0, 1, 2, 0, 1]))


class BigramOfTheLecture(nn.Module):
    """A bigram model as video lectures write it: the logits viewed as (B*T, C) for the loss, and returned so."""

    def __init__(self, merged=True):
        super().__init__()
        self.table, self.merged = nn.Embedding(5, 5), merged

    def forward(self, idx, targets=None):
        logits = self.table(idx)
        if targets is None:
            return logits, None
        B, T, C = logits.shape
        flat = logits.view(B * T, C)
        loss = F.cross_entropy(flat, targets.view(B * T))
        return (flat if self.merged else logits), loss


def test_logits_returned_with_the_batch_merged_are_refused_with_the_way_out(tmp_path):
    """forward returning logits.view(B*T, C) beside its loss: one line at forward, that says to return (B, T, C);
    so returned, the model derives and agrees."""
    torch.manual_seed(4)
    idx, targets = torch.randint(0, 5, (2, 3)), torch.randint(0, 5, (2, 3))
    with pytest.raises(S.SymPropError, match=r"forward \(test_export.py:\d+\).*\(6, 5\), the batch of 2 merged.*"
                                             r"\(B, T, C\)"):
        S.from_torch(BigramOfTheLecture().double(), lambda out: out[1], example_inputs=(idx, targets), name="bigram")
    net = BigramOfTheLecture(merged=False).double()
    model = S.from_torch(net, lambda out: out[1], example_inputs=(idx, targets), name="bigram_apart")
    agree(model, net, (idx,), targets, lambda out, t: net(idx, t)[1], tmp_path)


class OwnBinaryLoss(nn.Module):
    """forward(x, y) -> (logit, loss): one logit a sample, its own BCE of integer labels read as numbers."""

    def __init__(self):
        super().__init__()
        self.score = nn.Linear(4, 1)

    def forward(self, x, y=None):
        logit = self.score(x)
        if y is None:
            return logit, None
        return logit, F.binary_cross_entropy_with_logits(logit.squeeze(1), y.to(logit.dtype))


def test_an_own_loss_of_integer_labels_read_as_numbers(tmp_path):
    """The targets keep their example's shape, (N,), and their kind is what the loss reads them as: numbers here, so
    the one output is no reason for a refusal (it was refused as class indices over one output, and before that as a
    target of the output's shape, (N, 1))."""
    torch.manual_seed(8)
    net = OwnBinaryLoss().double()
    x, y = torch.randn(5, 4, dtype=torch.float64), torch.randint(0, 2, (5,))
    model = S.from_torch(net, lambda out: out[1], example_inputs=(x, y), name="own_binary")
    agree(model, net, (x,), y, lambda out, t: net(x, t)[1], tmp_path)


class Prototypes(nn.Module):
    """A prototypical network's logits: minus the squared distances to learned prototypes."""

    def __init__(self, broadcast=False):
        super().__init__()
        self.embed, self.prototypes, self.broadcast = nn.Linear(5, 4), nn.Parameter(torch.randn(3, 4)), broadcast

    def forward(self, x):
        z = self.embed(x)
        if self.broadcast:
            return -((z[:, None] - self.prototypes[None]) ** 2).sum(-1)
        return -torch.cdist(z, self.prototypes) ** 2


def test_an_op_whose_torch_code_branches_on_the_batch_size_is_refused_with_the_way_out(tmp_path):
    """torch.cdist takes another algorithm above 25 rows, so torch.export bounds the batch: one line that says so;
    the distances written out derive and agree."""
    torch.manual_seed(5)
    x, t = torch.randn(3, 5, dtype=torch.float64), torch.randint(0, 3, (3,))
    with pytest.raises(S.SymPropError, match=r"one path up to a batch of 25 and another above it.*write the op out"):
        S.from_torch(Prototypes().double(), nn.CrossEntropyLoss(), example_inputs=(x,), name="prototypes")
    net = Prototypes(broadcast=True).double()
    model = S.from_torch(net, nn.CrossEntropyLoss(), example_inputs=(x,), name="prototypes_written_out")
    agree(model, net, (x,), t, nn.CrossEntropyLoss(), tmp_path)


def test_a_model_that_fixes_the_batch_size_is_refused():
    class Fixed(nn.Module):
        def __init__(self):
            super().__init__()
            self.fc = nn.Linear(4, 4)

        def forward(self, x):
            return self.fc(x).view(3, 4)

    with pytest.raises(S.SymPropError, match="batch"):
        S.from_torch(Fixed(), nn.MSELoss(), example_inputs=(torch.randn(3, 4),))


FACTORY = """
import torch
from torch import nn


class Net(nn.Module):
    def __init__(self):
        super().__init__()
        self.flatten = nn.Flatten()
        self.fc1, self.fc2 = nn.Linear(9, 8), nn.Linear(8, 3)

    def forward(self, x):
        return self.fc2(torch.relu(self.fc1(self.flatten(x))))


def build():
    torch.manual_seed(0)
    return Net(), nn.CrossEntropyLoss(), (torch.randn(4, 3, 3),)
"""


def test_the_cli_derives_and_checks_what_a_factory_returns(tmp_path):
    from click.testing import CliRunner

    from symprop.cli import main

    (tmp_path / "net.py").write_text(FACTORY)
    runner = CliRunner()
    derived = runner.invoke(main, ["derive", str(tmp_path / "net.py:build"), "--out", str(tmp_path / "out")])
    assert derived.exit_code == 0, derived.output
    assert (tmp_path / "out" / "net_numpy.py").is_file() and (tmp_path / "out" / "net_torch.py").is_file()
    checked = runner.invoke(main, ["check", str(tmp_path / "net.py:build"), "--out", str(tmp_path / "out")])
    assert checked.exit_code == 0, checked.output


class FixedProjection(nn.Module):
    """A random projection held as a buffer: 5 x 1000 numbers, more than symprop writes into code."""

    def __init__(self):
        super().__init__()
        self.register_buffer("projection", torch.randn(5, 1000))

    def forward(self, x):
        return x @ self.projection


@pytest.mark.parametrize("make, op", [
    (FixedProjection, "a constant tensor of 5000 numbers"),
], ids=["large-constant"])
def test_what_symprop_lacks_is_refused_in_one_line(make, op):
    net = make().train()
    with pytest.raises(S.SymPropError, match=op) as error:
        S.derive_network(S.from_torch(net, nn.MSELoss(), example_inputs=(torch.randn(3, 4, 5),)))
    assert "\n" not in str(error.value)


# -- state dicts: the generated torch Module takes the source's and gives back one the source loads ------------------
def test_a_state_dict_round_trips_with_tied_weights_and_buffers(tmp_path):
    """Module(net.state_dict()) trains the tied weight once, under both keys; net.load_state_dict(m.state_dict())
    (strict) puts the trained weights back, and the source then computes the generated Module's loss."""

    class Tied(nn.Module):
        def __init__(self):
            super().__init__()
            self.wte = nn.Embedding(13, 8)
            self.block = Block()  # a causal mask registered as a buffer (minGPT's "bias")
            self.lm_head = nn.Linear(8, 13, bias=False)
            self.lm_head.weight = self.wte.weight

        def forward(self, idx):
            return self.lm_head(self.block(self.wte(idx)))

    torch.manual_seed(4)
    net = Tied().double()
    idx, t = torch.randint(0, 13, (3, 4)), torch.randint(0, 13, (3, 4))

    def loss(logits, targets):
        return F.cross_entropy(logits.view(-1, logits.size(-1)), targets.view(-1))

    model = S.from_torch(net, loss, example_inputs=(idx,), example_target=t, name="tied")
    module = generated_modules(model, tmp_path, ("torch",))["torch"]
    assert module.TIED_KEYS == {"lm_head.weight": "wte.weight"}
    assert module.BUFFER_SHAPES == {"block.attn.bias": (1, 1, 4, 4)}
    generated = module.Module(net.state_dict())
    assert generated.state_dict().keys() == net.state_dict().keys()
    assert generated.lm_head.weight is generated.wte.weight
    optimizer = torch.optim.SGD(generated.parameters(), lr=0.1)
    for _ in range(3):
        optimizer.zero_grad()
        generated(idx, t).backward()
        optimizer.step()
    trained = generated(idx, t).item()
    net.load_state_dict(generated.state_dict())
    assert relative_error(loss(net(idx), t), torch.tensor(trained, dtype=torch.float64)) <= TOLERANCE
    assert not torch.equal(net.wte.weight, Tied().double().wte.weight)


def test_a_state_dict_with_wrong_keys_or_shapes_gets_a_line_for_each(tmp_path):
    torch.manual_seed(0)
    net = NeuralNetwork().double()
    x = torch.randn(2, 6, 6, dtype=torch.float64)
    model = S.from_torch(net, nn.CrossEntropyLoss(), example_inputs=(x,), name="quickstart")
    module = generated_modules(model, tmp_path, ("torch",))["torch"]
    state = net.state_dict()
    key = next(iter(state))
    state["extra.weight"] = torch.zeros(3)
    state[key] = torch.zeros(2, 2)
    del state[list(state)[1]]
    with pytest.raises(ValueError) as error:
        module.Module(state)
    lines = str(error.value).splitlines()
    assert len(lines) == 3
    assert any("lacks" in line for line in lines) and any("'extra.weight'" in line for line in lines)
    assert any(f"params[{key!r}] has shape (2, 2)" in line for line in lines)


# -- what a model from torch starts from, and how its derivation reads ------------------------------------------------
class Mixed(nn.Module):
    def __init__(self):
        super().__init__()
        self.emb, self.norm, self.head = nn.Embedding(11, 6), nn.LayerNorm(6), nn.Linear(6, 11)
        self.scale = nn.Parameter(torch.ones(6))  # the user's own: torch leaves its initialization to its author

    def forward(self, idx):
        return self.head(self.norm(self.emb(idx)) * self.scale)


def test_init_params_draws_as_torchs_layers_and_the_source_params_are_the_modules(tmp_path):
    torch.manual_seed(0)
    net = Mixed().double()
    idx = torch.randint(0, 11, (3, 4))
    model = S.from_torch(net, lambda y, t: F.cross_entropy(y.view(-1, 11), t.view(-1)), example_inputs=(idx,),
                         example_target=idx, name="mixed")
    assert model.initializations == {"emb.weight": ("normal", 1.0), "norm.weight": ("ones",),
                                     "norm.bias": ("zeros",), "head.weight": ("uniform", 1 / math.sqrt(6)),
                                     "head.bias": ("uniform", 1 / math.sqrt(6)), "scale": ("normal", 1.0)}
    params = generated_modules(model, tmp_path, ("numpy",))["numpy"].init_params(0)
    assert (params["norm.weight"] == 1).all() and (params["norm.bias"] == 0).all()
    assert abs(params["head.weight"]).max() <= 1 / math.sqrt(6)
    source = model.source_params()
    assert source.keys() == dict(net.named_parameters()).keys()
    assert all((source[key] == value.detach().numpy()).all() for key, value in net.named_parameters())


def test_the_derivation_groups_its_rows_by_the_modules_that_made_them(tmp_path):
    torch.manual_seed(3)
    net = TinyGPT().double()
    idx = torch.randint(0, 13, (3, 4))

    def loss(logits, targets):
        return F.cross_entropy(logits.view(-1, logits.size(-1)), targets.view(-1))

    model = S.from_torch(net, loss, example_inputs=(idx,), example_target=idx, name="tiny_gpt")
    tex = S.derive_network(model).to_latex()
    forward, backward = tex.split(r"\section*{The backward pass}")[0], tex.split(r"\section*{The backward pass}")[1]
    paths = [r"transformer.wte", r"transformer.h.0.ln\_1", r"transformer.h.0.attn.c\_attn", r"transformer.h.1.attn",
             r"transformer.ln\_f", r"lm\_head"]
    places = [forward.index(rf"\intertext{{\texttt{{{path}}}}}") for path in paths]
    assert places == sorted(places)  # in the order forward runs them
    back = [backward.index(rf"\intertext{{\texttt{{{path}}}}}") for path in paths]
    assert back == sorted(back, reverse=True)  # and the backward pass in reverse
    # the table of layers names torch's layers by their paths, each once, in the order forward calls them
    assert r"\texttt{transformer.h.0.attn.c\_attn} & Linear(8, 24) & $N \times 4 \times 24$" in tex
    assert "(again)" not in tex and tex.count(r"\texttt{lm\_head} &") == 1


TOKEN_FACTORY = '''
from dataclasses import dataclass

import torch
from torch import nn
from torch.nn import functional as F


@dataclass
class Config:  # a dataclass in the factory's file: its module must be importable by name
    vocab_size: int = 12
    block_size: int = 6


class Bigram(nn.Module):
    def __init__(self, config):
        super().__init__()
        self.table = nn.Embedding(config.vocab_size, config.vocab_size)

    def forward(self, idx, targets=None):
        logits = self.table(idx)
        loss = None if targets is None else F.cross_entropy(logits.view(-1, logits.size(-1)), targets.view(-1))
        return logits, loss


def build():
    torch.manual_seed(0)
    idx = torch.randint(0, 12, (2, 6))
    return Bigram(Config()), lambda out: out[1], (idx, idx)
'''


def test_symprop_train_trains_a_factorys_token_model_on_text_from_its_own_parameters(tmp_path):
    from click.testing import CliRunner

    from symprop.cli import main

    (tmp_path / "bigram.py").write_text(TOKEN_FACTORY)
    (tmp_path / "text.txt").write_text("the cat sat on the mat. " * 20)
    result = CliRunner().invoke(main, ["train", str(tmp_path / "bigram.py:build"), "--text", str(tmp_path / "text.txt"),
                                       "--epochs", "3", "--optimizer", "adam", "--lr", "0.05",
                                       "--out", str(tmp_path / "trained")])
    assert result.exit_code == 0, result.output
    assert "starting from Bigram's own parameters" in result.output
    assert (tmp_path / "trained" / "bigram_params.npz").is_file()
    sampled = CliRunner().invoke(main, ["sample", str(tmp_path / "bigram.py:build"), "--params",
                                        str(tmp_path / "trained" / "bigram_params.npz"), "--length", "20"])
    assert sampled.exit_code == 0 and len(sampled.output.strip()) >= 15, sampled.output


# -- the tutorials' char-RNN classifier: nn.RNN sequence first, its last hidden state, LogSoftmax and nn.NLLLoss ------
class CharRNN(nn.Module):
    def __init__(self, input_size=10, hidden_size=12, output_size=4):
        super().__init__()
        self.rnn = nn.RNN(input_size, hidden_size)
        self.h2o = nn.Linear(hidden_size, output_size)
        self.softmax = nn.LogSoftmax(dim=1)

    def forward(self, line_tensor):
        rnn_out, hidden = self.rnn(line_tensor)
        return self.softmax(self.h2o(hidden[0]))


def test_a_char_rnn_classifier_with_nllloss(tmp_path):
    torch.manual_seed(5)
    net = CharRNN().double()
    x, t = torch.randn(3, 6, 10, dtype=torch.float64), torch.randint(0, 4, (3,))  # batch first here; torch's (6, 3, 10)
    model = S.from_torch(net, nn.NLLLoss(), example_inputs=(x.transpose(0, 1),), example_target=t, name="char_rnn")
    assert model.net.batch_axis == 1
    net.zero_grad()
    want = nn.NLLLoss()(net(x.transpose(0, 1)), t)
    want.backward()
    for backend, module in generated_modules(model, tmp_path).items():
        cast = (lambda v: v.detach().numpy()) if backend == "numpy" else (lambda v: v.detach())
        loss, grads = module.loss_and_gradients({k: cast(p) for k, p in net.named_parameters()}, cast(x), cast(t))
        assert relative_error(loss, want.detach()) <= TOLERANCE, backend
        for key, p in net.named_parameters():
            assert relative_error(grads[key], p.grad) <= TOLERANCE, (backend, key)


# -- nn.Embedding(padding_idx): the padding row is read, but takes no gradient ---------------------------------------
class PaddedBag(nn.Module):
    def __init__(self):
        super().__init__()
        self.emb = nn.Embedding(10, 6, padding_idx=0)
        self.head = nn.Linear(6, 3)

    def forward(self, idx):
        return self.head(self.emb(idx).mean(dim=1))


def test_an_embeddings_padding_row_takes_no_gradient(tmp_path):
    torch.manual_seed(2)
    net = PaddedBag().double()
    with torch.no_grad():
        net.emb.weight[0] = torch.randn(6)  # a padding row that is not zero: still read, still not trained
    idx = torch.tensor([[0, 3, 4, 0], [1, 0, 2, 5], [7, 8, 9, 0]])
    t = torch.randint(0, 3, (3,))
    model = S.from_torch(net, nn.CrossEntropyLoss(), example_inputs=(idx,), example_target=t, name="padded_bag")
    agree(model, net, (idx,), t, nn.CrossEntropyLoss(), tmp_path)
    assert not net.emb.weight.grad[0].any()


@pytest.mark.parametrize("loss", [nn.L1Loss(), nn.SmoothL1Loss(beta=0.5), nn.HuberLoss(delta=0.7),
                                  lambda y, t: F.huber_loss(y, t, reduction="sum", delta=2.0) + F.l1_loss(y, t)],
                         ids=["l1", "smooth_l1", "huber", "functions"])
def test_l1_smooth_l1_and_huber_losses(loss, tmp_path):
    torch.manual_seed(1)
    net = nn.Sequential(nn.Linear(5, 8), nn.Tanh(), nn.Linear(8, 3)).double()
    x, t = torch.randn(6, 5, dtype=torch.float64), 0.6 * torch.randn(6, 3, dtype=torch.float64)
    model = S.from_torch(net, loss, example_inputs=(x,), example_target=t, name="robust")
    agree(model, net, (x,), t, loss, tmp_path)


# -- the seq2seq tutorial's encoder in training mode: its dropout, lowered with the GRU, takes its mask -------------
class Encoder(nn.Module):
    def __init__(self, input_size=15, hidden_size=8, dropout_p=0.1):
        super().__init__()
        self.embedding = nn.Embedding(input_size, hidden_size)
        self.gru = nn.GRU(hidden_size, hidden_size, batch_first=True)
        self.dropout = nn.Dropout(dropout_p)
        self.out = nn.Linear(hidden_size, input_size)

    def forward(self, input):
        output, hidden = self.gru(self.dropout(self.embedding(input)))
        return F.log_softmax(self.out(output), dim=-1)


def test_a_dropout_lowered_with_a_gru_takes_its_mask(tmp_path):
    torch.manual_seed(0)
    net = Encoder().double().train()
    x, t = torch.randint(0, 15, (3, 5)), torch.randint(0, 15, (3, 5))

    def loss(y, t):
        return F.nll_loss(y.view(-1, y.size(-1)), t.view(-1))

    model = S.from_torch(net, loss, example_inputs=(x,), example_target=t, name="encoder")
    torch.manual_seed(13)
    mask = torch.empty(3, 5, 8, dtype=torch.float64).bernoulli_(0.9)
    agree_given_draws(model, net, x, t, loss, {"dropout_mask": mask}, 13, tmp_path)


def test_a_recurrent_layers_own_dropout_in_training_is_refused():
    """torch's decomposition of nn.LSTM leaves the dropout between its layers out: a number that would be wrong."""
    net = nn.LSTM(4, 6, num_layers=2, dropout=0.3).train()
    with pytest.raises(S.SymPropError, match=r"nn.LSTM\(dropout=0.3\) in training mode is not supported"):
        S.from_torch(net, lambda out, t: F.mse_loss(out[0], t), example_inputs=(torch.randn(5, 3, 4),),
                     example_target=torch.randn(5, 3, 6))


# -- makemore's bigram: one_hot(xs, num_classes).float() @ W, inputs of one id per example ---------------------------
class OneHotBigram(nn.Module):
    def __init__(self, n=12):
        super().__init__()
        self.W = nn.Parameter(torch.randn(n, n))

    def forward(self, xs):
        xenc = F.one_hot(xs, num_classes=self.W.shape[0]).double()
        return xenc @ self.W


def test_a_one_hot_bigram_on_one_id_per_example(tmp_path):
    torch.manual_seed(0)
    net = OneHotBigram().double()
    xs, ys = torch.randint(0, 12, (7,)), torch.randint(0, 12, (7,))
    model = S.from_torch(net, F.cross_entropy, example_inputs=(xs,), example_target=ys, name="bigram")
    assert model.inputs == {"xs": ()}
    agree(model, net, (xs,), ys, F.cross_entropy, tmp_path)


# -- nanoGPT's attention in training mode: dropout on the attention's probabilities and on its output ----------------
class DroppingAttention(nn.Module):
    def __init__(self, flash: bool):
        super().__init__()
        self.c_attn, self.c_proj = nn.Linear(8, 24), nn.Linear(8, 8)
        self.attn_dropout, self.resid_dropout = nn.Dropout(0.1), nn.Dropout(0.1)
        self.dropout, self.flash = 0.1, flash
        self.register_buffer("bias", torch.tril(torch.ones(4, 4)).view(1, 1, 4, 4))

    def forward(self, x):
        B, T, C = x.size()
        q, k, v = self.c_attn(x).split(8, dim=2)
        q, k, v = (z.view(B, T, 2, 4).transpose(1, 2) for z in (q, k, v))
        if self.flash:
            y = F.scaled_dot_product_attention(q, k, v, attn_mask=None,
                                               dropout_p=self.dropout if self.training else 0, is_causal=True)
        else:
            att = (q @ k.transpose(-2, -1)) * (1.0 / math.sqrt(k.size(-1)))
            att = att.masked_fill(self.bias[:, :, :T, :T] == 0, float("-inf"))
            y = self.attn_dropout(F.softmax(att, dim=-1)) @ v
        return self.resid_dropout(self.c_proj(y.transpose(1, 2).contiguous().view(B, T, C)))


def test_attention_dropout_written_out_takes_torchs_masks(tmp_path):
    torch.manual_seed(0)
    net = DroppingAttention(flash=False).double().train()
    x, t = torch.randn(3, 4, 8, dtype=torch.float64), torch.randn(3, 4, 8, dtype=torch.float64)
    model = S.from_torch(net, nn.MSELoss(), example_inputs=(x,), example_target=t, name="dropping_attention")
    torch.manual_seed(21)
    masks = {"dropout_mask": torch.empty(3, 2, 4, 4, dtype=torch.float64).bernoulli_(0.9),
             "dropout_mask_1": torch.empty(3, 4, 8, dtype=torch.float64).bernoulli_(0.9)}
    agree_given_draws(model, net, x, t, nn.MSELoss(), masks, 21, tmp_path)


def test_sdpa_with_dropout_p_takes_the_mask_of_its_probabilities(tmp_path):
    """torch's fused attention draws its mask inside; symprop check's reference is torch's math given the same mask."""
    from symprop.check import compare

    torch.manual_seed(0)
    net = DroppingAttention(flash=True).double().train()
    x, t = torch.randn(3, 4, 8, dtype=torch.float64), torch.randn(3, 4, 8, dtype=torch.float64)
    model = S.from_torch(net, nn.MSELoss(), example_inputs=(x,), example_target=t, name="sdpa_dropout")
    assert model.inputs == {"x": (4, 8), "dropout_mask": (2, 4, 4), "dropout_mask_1": (4, 8)}
    assert all(row.passed for row in compare(model, generated_modules(model, tmp_path), seeds=(0,), batches=(3,)))


def test_train_draws_a_dropouts_mask_afresh_for_every_batch(tmp_path):
    torch.manual_seed(0)
    net = nn.Sequential(nn.Linear(5, 16), nn.ReLU(), nn.Dropout(0.25), nn.Linear(16, 3)).double().train()
    x, t = torch.randn(64, 5, dtype=torch.float64), torch.randint(0, 3, (64,))
    model = S.from_torch(net, nn.CrossEntropyLoss(), example_inputs=(x[:4],), name="dropping_trained")
    assert model.random_inputs == {"dropout_mask": ("keep", 0.75)}
    for backend, module in generated_modules(model, tmp_path).items():
        data = (x.numpy(), t.numpy()) if backend == "numpy" else (x, t)
        params, history = module.train(module.init_params(0), *data, 0.1, 30, 16)
        assert history[-1] < 0.9 * history[0], backend


# -- values without gradient: x.detach(), a torch.no_grad() block, and layers that work in place ---------------------
class Anchored(nn.Module):
    def __init__(self):
        super().__init__()
        self.fc1, self.fc2 = nn.Linear(4, 6), nn.Linear(6, 3)
        self.act = nn.ReLU(inplace=True)

    def forward(self, x):
        h = self.act(self.fc1(x))
        with torch.no_grad():
            anchor = self.fc2(torch.tanh(h))  # a target computed by the same layer, without gradient
        h = h + 1.0
        h.mul_(0.5)
        return self.fc2(h) - 0.5 * anchor + h.detach().sum(-1, keepdim=True)


def test_detach_no_grad_and_in_place_layers(tmp_path):
    torch.manual_seed(3)
    net = Anchored().double()
    x, t = torch.randn(5, 4, dtype=torch.float64), torch.randn(5, 3, dtype=torch.float64)
    model = S.from_torch(net, nn.MSELoss(), example_inputs=(x,), example_target=t, name="anchored")
    agree(model, net, (x,), t, nn.MSELoss(), tmp_path)


# -- masks the model computes: comparisons, torch.where, and a padding mask from the input ids -----------------------
class PaddingAttention(nn.Module):
    """Attention over tokens that skips the padding: the mask is computed in forward from the ids themselves."""

    def __init__(self):
        super().__init__()
        self.emb = nn.Embedding(10, 8, padding_idx=0)
        self.q, self.k = nn.Linear(8, 8), nn.Linear(8, 8)
        self.out = nn.Linear(8, 2)

    def forward(self, idx):
        x = self.emb(idx)
        att = self.q(x) @ self.k(x).transpose(-2, -1) / math.sqrt(8)
        att = att.masked_fill((idx == 0).unsqueeze(1), float("-inf"))
        y = F.softmax(att, dim=-1) @ x
        y = torch.where(y > 0, y, 0.1 * y) + y.masked_fill(y.abs() > 0.5, 0.5)
        return self.out(y.mean(1))


def test_masks_computed_from_the_ids_and_the_values(tmp_path):
    torch.manual_seed(4)
    net = PaddingAttention().double()
    idx = torch.randint(1, 10, (3, 5))
    idx[:, -2:] = 0
    t = torch.randint(0, 2, (3,))
    model = S.from_torch(net, nn.CrossEntropyLoss(), example_inputs=(idx,), example_target=t, name="padding_attention")
    net.zero_grad()
    want = nn.CrossEntropyLoss()(net(idx), t)
    want.backward()
    for backend, module in generated_modules(model, tmp_path).items():
        cast = (lambda v: v.detach().numpy()) if backend == "numpy" else (lambda v: v.detach())
        loss, grads = module.loss_and_gradients({k: cast(p) for k, p in net.named_parameters()}, cast(idx), cast(t))
        assert relative_error(loss, want.detach()) <= TOLERANCE, backend
        for key, p in net.named_parameters():  # k.bias's is 0 (a shift of every score of a query), up to rounding
            assert float(abs(torch.as_tensor(grads[key]) - p.grad).max()) <= TOLERANCE * max(1.0, p.grad.abs().max()), \
                (backend, key)


# -- a contrastive head: F.normalize, cosine similarity, logsumexp, a loss per element weighed by hand --------------
class Contrastive(nn.Module):
    def __init__(self):
        super().__init__()
        self.proj = nn.Linear(5, 4)

    def forward(self, x):
        z = F.normalize(self.proj(x), dim=-1)
        return z, torch.logsumexp(z * 3.0, dim=-1)


def contrastive_loss(out, t):
    z, lse = out
    each = F.smooth_l1_loss(z, t, reduction="none").sum(-1)
    return (each * torch.linspace(0.5, 1.5, z.shape[-1]).sum()).mean() - F.cosine_similarity(z, t, dim=-1).mean() \
        + lse.mean() + F.kl_div(F.log_softmax(z, -1), F.log_softmax(t, -1), reduction="batchmean", log_target=True)


def test_normalize_cosine_logsumexp_and_per_element_losses(tmp_path):
    torch.manual_seed(8)
    net = Contrastive().double()
    x, t = torch.randn(6, 5, dtype=torch.float64), torch.randn(6, 4, dtype=torch.float64)
    model = S.from_torch(net, contrastive_loss, example_inputs=(x,), example_target=t, name="contrastive")
    agree(model, net, (x,), t, contrastive_loss, tmp_path)


def test_makemores_bigram_loss_indexes_each_rows_probability(tmp_path):
    """probs = counts / counts.sum(1, keepdims=True); loss = -probs[torch.arange(n), ys].log().mean(), as written."""

    class Counts(OneHotBigram):
        def forward(self, xs):
            counts = super().forward(xs).exp()
            return counts / counts.sum(1, keepdims=True)

    def loss(probs, ys):
        return -probs[torch.arange(ys.shape[0]), ys].log().mean()

    torch.manual_seed(1)
    net = Counts().double()
    xs, ys = torch.randint(0, 12, (9,)), torch.randint(0, 12, (9,))
    model = S.from_torch(net, loss, example_inputs=(xs,), example_target=ys, name="bigram_counts")
    agree(model, net, (xs,), ys, loss, tmp_path)
    numpy_module = generated_modules(model, tmp_path / "again")["numpy"]  # a label of 12 of 12: one line, not a 0
    params = {k: v.detach().numpy() for k, v in net.state_dict().items()}
    with pytest.raises(ValueError, match=r"t holds class indices in \[0, 12\), got 12"):
        numpy_module.loss_and_gradients(params, xs.numpy(), torch.cat([torch.tensor([12]), ys[1:]]).numpy())


# -- nn.TransformerEncoder with a key padding mask computed from the ids, as classifiers write it -------------------
class PaddedEncoder(nn.Module):
    def __init__(self):
        super().__init__()
        self.emb = nn.Embedding(20, 8, padding_idx=0)
        layer = nn.TransformerEncoderLayer(8, 2, 16, dropout=0.0, batch_first=True)
        self.encoder = nn.TransformerEncoder(layer, 2, enable_nested_tensor=False)
        self.head = nn.Linear(8, 3)

    def forward(self, idx):
        h = self.encoder(self.emb(idx), src_key_padding_mask=idx == 0)
        return self.head(h[:, 0])


def test_a_key_padding_mask_computed_from_the_ids(tmp_path):
    torch.manual_seed(6)
    net = PaddedEncoder().double().eval()
    idx = torch.randint(1, 20, (3, 5))
    idx[:, -2:] = 0
    t = torch.randint(0, 3, (3,))
    model = S.from_torch(net, nn.CrossEntropyLoss(), example_inputs=(idx,), example_target=t, name="padded_encoder")
    agree(model, net, (idx,), t, nn.CrossEntropyLoss(), tmp_path)


def test_an_output_that_merges_the_batch_with_time_is_refused_in_one_line():
    """word_language_model's decoded.view(-1, ntoken): the batch is no axis of its own, so the loss cannot be
    exported for any batch size; the line says what to do."""

    class Flattened(nn.Module):
        def __init__(self):
            super().__init__()
            self.encoder, self.rnn, self.decoder = nn.Embedding(20, 8), nn.RNN(8, 8), nn.Linear(8, 20)

        def forward(self, input, hidden):
            output, hidden = self.rnn(self.encoder(input), hidden)
            return F.log_softmax(self.decoder(output).view(-1, 20), dim=1), hidden

    inp, hidden = torch.randint(0, 20, (5, 3)), torch.zeros(1, 3, 8)
    with pytest.raises(S.SymPropError, match=r"output has shape \(5\*N, 20\): the batch is merged") as error:
        S.from_torch(Flattened(), lambda out, t: F.nll_loss(out[0], t), example_inputs=(inp, hidden),
                     example_target=torch.randint(0, 20, (15,)))
    assert "\n" not in str(error.value)


def test_what_torch_export_says_is_said_in_symprops_words():
    """torch.export's own texts (L['t'].size()[0] = 15 is not equal to ..., "Please file an issue on github") for
    a flattened target of a sequence-first model and for a tensor's .data."""
    class SequenceFirst(nn.Module):
        def __init__(self):
            super().__init__()
            self.fc = nn.Linear(4, 3)

        def forward(self, x):  # (sequence, batch, 4)
            return self.fc(x)

    x = torch.randn(5, 3, 4, dtype=torch.float64)
    flat = torch.randint(0, 3, (15,))
    with pytest.raises(S.SymPropError, match=r"^loss: the batch axis of t \(axis 0, 15\) and of y \(axis 1, 3\) "):
        S.from_torch(SequenceFirst().double(), lambda y, t: F.cross_entropy(y.view(-1, 3), t), example_inputs=(x,),
                     example_target=flat, batch_axis=1)

    class ReadsData(nn.Module):
        def __init__(self):
            super().__init__()
            self.fc = nn.Linear(4, 3)

        def forward(self, x):
            return self.fc(x) * torch.ones(3).type_as(x.data)

    with pytest.raises(S.SymPropError, match=r"reads a tensor's .data, .*write .detach\(\) instead of .data$"):
        S.from_torch(ReadsData().double(), nn.MSELoss(), example_inputs=(x[0],), example_target=x[0, :, :3])


# -- a boolean attn_mask for SDPA (True: attend), given as an input or computed from the ids and reshaped ---------
class MaskedSDPA(nn.Module):
    def __init__(self, from_ids: bool):
        super().__init__()
        self.from_ids = from_ids
        self.emb, self.qkv, self.head = nn.Embedding(10, 8), nn.Linear(8, 24), nn.Linear(8, 3)

    def forward(self, idx, keep=None):
        q, k, v = self.qkv(self.emb(idx)).chunk(3, dim=-1)
        mask = (idx != 0).unsqueeze(1) if self.from_ids else keep.unsqueeze(1)
        return self.head(F.scaled_dot_product_attention(q, k, v, attn_mask=mask)[:, 0])


@pytest.mark.parametrize("from_ids", [False, True])
def test_a_boolean_sdpa_mask_drops_where_false(tmp_path, from_ids):
    """torch reads a boolean attn_mask as where to attend (False: −inf), a float one as added: a boolean mask read as
    0/1 added to the scores gave a wrong loss."""
    torch.manual_seed(2)
    net = MaskedSDPA(from_ids).double()
    idx = torch.randint(1, 10, (4, 5))
    idx[:, -2:] = 0
    inputs = (idx,) if from_ids else (idx, idx != 0)
    t = torch.randint(0, 3, (4,))
    model = S.from_torch(net, nn.CrossEntropyLoss(), example_inputs=inputs, example_target=t, name="sdpa_bool")
    agree(model, net, inputs, t, nn.CrossEntropyLoss(), tmp_path)


# -- a buffer on the left of an operator: self.pe[:t] + x, self.scale * h -----------------------------------------
class BufferOnTheLeft(nn.Module):
    def __init__(self):
        super().__init__()
        self.fc, self.head = nn.Linear(4, 6), nn.Linear(6, 3)
        self.register_buffer("offset", torch.linspace(0.5, 1.5, 6, dtype=torch.float64))

    def forward(self, x):
        h = torch.tanh(self.fc(x))
        h = self.offset + h
        h = self.offset - h
        h = self.offset * h
        h = self.offset / (h * h + 1)
        return self.head(self.offset ** h)


def test_a_buffer_on_the_left_of_an_operator(tmp_path):
    """torch's Tensor.__add__ of a buffer and a traced value handed the call back to the traced value's
    __torch_function__, which called it again: a RecursionError."""
    torch.manual_seed(3)
    net = BufferOnTheLeft().double()
    x, t = torch.randn(5, 4, dtype=torch.float64), torch.randn(5, 3, dtype=torch.float64)
    model = S.from_torch(net, nn.MSELoss(), example_inputs=(x,), example_target=t, name="left")
    agree(model, net, (x,), t, nn.MSELoss(), tmp_path)


# -- torch's loss modules as torch reads them: classes on axis 1, probability targets, the example target's shape ---
class PerPosition(nn.Module):
    def __init__(self):
        super().__init__()
        self.fc = nn.Linear(4, 3)

    def forward(self, x):
        return self.fc(x).transpose(1, 2)  # (N, C, d): torch's layout for a loss per position


@pytest.mark.parametrize("positions", [3, 5])
def test_a_loss_module_takes_its_classes_on_axis_1(tmp_path, positions):
    """nn.CrossEntropyLoss on (N, C, d) logits: with d = C the target fitted the last axis too, and the loss was a
    cross-entropy over the wrong axis (relative error 1)."""
    torch.manual_seed(4)
    net = PerPosition().double()
    x, t = torch.randn(4, positions, 4, dtype=torch.float64), torch.randint(0, 3, (4, positions))
    model = S.from_torch(net, nn.CrossEntropyLoss(), example_inputs=(x,), example_target=t, name="per_position")
    agree(model, net, (x,), t, nn.CrossEntropyLoss(), tmp_path)


def test_probability_targets_and_the_example_targets_shape(tmp_path):
    """A float example target of the output's shape is probabilities for nn.CrossEntropyLoss; a target of another
    shape than the output's (out.squeeze(1) against (N,)) is the example target's."""
    torch.manual_seed(5)
    net = nn.Sequential(nn.Linear(5, 4), nn.Tanh(), nn.Linear(4, 3)).double()
    x = torch.randn(6, 5, dtype=torch.float64)
    probs = torch.softmax(torch.randn(6, 3, dtype=torch.float64), -1)
    model = S.from_torch(net, nn.CrossEntropyLoss(), example_inputs=(x,), example_target=probs, name="probs")
    agree(model, net, (x,), probs, nn.CrossEntropyLoss(), tmp_path / "probs")
    net = nn.Sequential(nn.Linear(5, 4), nn.Tanh(), nn.Linear(4, 1)).double()
    t = torch.randn(6, dtype=torch.float64)

    def loss(out, t):
        return F.mse_loss(out.squeeze(1), t)

    model = S.from_torch(net, loss, example_inputs=(x,), example_target=t, name="squeezed")
    assert model.target_shape == ("batch",)
    agree(model, net, (x,), t, loss, tmp_path / "squeezed")


def test_class_indices_out_of_range_are_refused_by_the_generated_modules(tmp_path):
    """torch's default ignore_index (-100) is not skipped on a (batch, classes) output: a target of -100 (or 7 of 3
    classes) gave a finite, wrong loss in NumPy; both modules now refuse it in one line."""
    net = nn.Sequential(nn.Linear(5, 3)).double()
    x = torch.randn(4, 5, dtype=torch.float64)
    model = S.from_torch(net, nn.CrossEntropyLoss(), example_inputs=(x,), example_target=torch.tensor([0, 1, 2, 1]),
                         name="ranged")
    params = {k: v.detach() for k, v in net.state_dict().items()}
    for backend, module in generated_modules(model, tmp_path).items():
        convert = (lambda a: a.numpy()) if backend == "numpy" else (lambda a: a)
        for bad in (-100, 3):
            with pytest.raises(ValueError, match=rf"t holds class indices in \[0, 3\), got {bad}"):
                module.loss_and_gradients({k: convert(v) for k, v in params.items()}, convert(x),
                                          convert(torch.tensor([0, bad, 2, 1])))


# -- makemore's bag of words: a constant attention (zeros, masked, softmax) over the batch; an int64 0/1 mask --------
class BagOfWords(nn.Module):
    def __init__(self, block=5):
        super().__init__()
        self.fc, self.head = nn.Linear(6, 6), nn.Linear(6, 3)
        self.register_buffer("bias", torch.tril(torch.ones(block, block)).view(1, block, block))

    def forward(self, x):
        b, t, c = x.size()
        att = torch.zeros((b, t, t), dtype=x.dtype)
        att = att.masked_fill(self.bias[:, :t, :t] == 0, float("-inf"))
        att = F.softmax(att, dim=-1)
        return self.head((att @ self.fc(x)).mean(1))


class MaskedMeanPool(nn.Module):  # sentence embeddings: the mean over the positions an int64 mask keeps
    def __init__(self):
        super().__init__()
        self.emb, self.head = nn.Embedding(10, 6), nn.Linear(6, 3)

    def forward(self, idx, attention_mask):
        e = self.emb(idx)
        m = attention_mask.unsqueeze(-1).expand(e.size()).float().to(e.dtype)
        return self.head(torch.sum(e * m, 1) / torch.clamp(m.sum(1), min=1e-9))


def test_a_constant_softmax_and_an_integer_mask(tmp_path):
    """The softmax of a constant made over the batch was printed with an axis its (smaller) array lacks; an int64
    input made the torch module's arrays int64."""
    torch.manual_seed(6)
    net, t = BagOfWords().double(), torch.randint(0, 3, (4,))
    x = torch.randn(4, 5, 6, dtype=torch.float64)
    agree(S.from_torch(net, nn.CrossEntropyLoss(), example_inputs=(x,), name="bow"), net, (x,), t,
          nn.CrossEntropyLoss(), tmp_path / "bow")
    net, idx = MaskedMeanPool().double(), torch.randint(0, 10, (4, 5))
    mask = torch.ones(4, 5, dtype=torch.long)
    mask[:, -2:] = 0
    model = S.from_torch(net, nn.CrossEntropyLoss(), example_inputs=(idx, mask), name="mean_pool")
    agree(model, net, (idx, mask), t, nn.CrossEntropyLoss(), tmp_path / "mean_pool")
    net, counts = WordCounts().double(), torch.randint(0, 4, (4, 6))  # integers into a product: made numbers first
    model = S.from_torch(net, nn.CrossEntropyLoss(), example_inputs=(counts,), name="counts")
    agree(model, net, (counts,), t, nn.CrossEntropyLoss(), tmp_path / "counts")


class WordCounts(nn.Module):  # a bag of words: each word's count, an int64 input
    def __init__(self):
        super().__init__()
        self.fc = nn.Linear(6, 3)

    def forward(self, counts):
        return self.fc(counts.to(self.fc.weight.dtype))


def test_an_op_inside_a_torch_layer_is_refused_naming_the_layer():
    """nn.LocalResponseNorm lowers to aten.avg_pool3d, which the user never wrote: the refusal names the layer."""
    class Normalized(nn.Module):
        def __init__(self):
            super().__init__()
            self.conv, self.lrn, self.fc = nn.Conv2d(1, 4, 3), nn.LocalResponseNorm(2), nn.Linear(4 * 9, 2)

        def forward(self, x):
            return self.fc(self.lrn(self.conv(x)).flatten(1))

    with pytest.raises(S.SymPropError, match=r"forward \(test_export.py:\d+\): aten.avg_pool3d.default is not "
                                             r"supported by symprop \(inside nn.LocalResponseNorm lrn\)$"):
        S.from_torch(Normalized().double(), nn.CrossEntropyLoss(), example_inputs=(torch.randn(3, 1, 5, 5).double(),),
                     example_target=torch.randint(0, 2, (3,)))


def test_a_function_that_torch_lowers_names_it_and_a_failed_trace_is_quiet(capfd):
    """torch.logaddexp reaches symprop as torch's lowering of it (ne, where, log1p): the refusal names the function
    the user called; a trace torch.export cannot make (a Python branch on the data, in GaussianNLLLoss) is one line,
    without torch's graph dumps on stderr."""
    class LogAddExp(nn.Module):
        def __init__(self):
            super().__init__()
            self.fc = nn.Linear(4, 3)

        def forward(self, x):
            h = self.fc(x)
            return torch.logaddexp(h, 2 * h)

    x, t = torch.randn(4, 4, dtype=torch.float64), torch.randn(4, 3, dtype=torch.float64)
    with pytest.raises(S.SymPropError, match=r"in torch's lowering of logaddexp\)$"):
        S.from_torch(LogAddExp().double(), nn.MSELoss(), example_inputs=(x,), example_target=t)

    class MeanAndVariance(nn.Module):
        def __init__(self):
            super().__init__()
            self.fc = nn.Linear(4, 6)

        def forward(self, x):
            h = self.fc(x)
            return h[:, :3], F.softplus(h[:, 3:]) + 1e-3

    gaussian = nn.GaussianNLLLoss()
    capfd.readouterr()
    with pytest.raises(S.SymPropError, match="it branches on a value of the data, at .*gaussian_nll_loss$"):
        S.from_torch(MeanAndVariance().double(), lambda out, t: gaussian(out[0], t, out[1]), example_inputs=(x,),
                     example_target=t)
    assert "def forward" not in "".join(capfd.readouterr())


# -- makemore's bigram as a table of logits indexed by the ids: self.logits[idx] ----------------------------------
class BigramTable(nn.Module):
    def __init__(self, n=7):
        super().__init__()
        self.logits = nn.Parameter(torch.zeros((n, n)))

    def forward(self, idx):
        return self.logits[idx]


def test_a_table_indexed_by_the_ids_is_an_embedding(tmp_path):
    torch.manual_seed(7)
    net = BigramTable().double()
    with torch.no_grad():
        net.logits.normal_()
    idx, t = torch.randint(0, 7, (4, 5)), torch.randint(0, 7, (4, 5))

    def loss(logits, targets):
        return F.cross_entropy(logits.view(-1, logits.size(-1)), targets.view(-1), ignore_index=-1)

    model = S.from_torch(net, loss, example_inputs=(idx,), example_target=t, name="bigram_table")
    assert model.index_ranges == {"idx": 7}
    agree(model, net, (idx,), t, loss, tmp_path)


# -- a loss function's torch loss with reduction="sum": ATen numbers the reduction, and orders its arguments its way --
SUMMED = {
    "mse": (lambda o, t: F.mse_loss(o, t, reduction="sum"), False, False),
    "l1": (lambda o, t: F.l1_loss(o, t, reduction="sum"), False, False),
    "smooth_l1": (lambda o, t: F.smooth_l1_loss(o, t, reduction="sum", beta=0.5), False, False),
    "huber": (lambda o, t: F.huber_loss(o, t, reduction="sum", delta=0.5), False, False),
    "bce": (lambda o, t: F.binary_cross_entropy(torch.sigmoid(o), t, reduction="sum"), False, False),
    "bce_with_logits": (lambda o, t: F.binary_cross_entropy_with_logits(o, t, reduction="sum"), False, False),
    "kl_div": (lambda o, t: F.kl_div(F.log_softmax(o, -1), t, reduction="sum"), False, True),
    "nll": (lambda o, t: F.nll_loss(F.log_softmax(o, -1), t, reduction="sum"), True, False),
    "nll_ignore_index": (lambda o, t: F.nll_loss(F.log_softmax(o, -1), t, ignore_index=1), True, False),
    "cross_entropy": (lambda o, t: F.cross_entropy(o, t, reduction="sum"), True, False),
}


@pytest.mark.parametrize("name", sorted(SUMMED))
def test_a_loss_functions_reduction_through_aten(tmp_path, name):
    """F.nll_loss(..., reduction="sum") reached symprop as aten.nll_loss(input, target, weight, 2, -100): read in
    F.nll_loss's order, its sum was a mean (the annotated transformer's SimpleLossCompute: a loss 14x too small)."""
    loss, indices, distribution = SUMMED[name]
    torch.manual_seed(8)
    net = nn.Sequential(nn.Linear(5, 3)).double()
    x = torch.randn(6, 5, dtype=torch.float64)
    t = torch.randint(0, 3, (6,)) if indices else torch.rand(6, 3, dtype=torch.float64)
    if distribution:
        t = t / t.sum(-1, keepdim=True)
    model = S.from_torch(net, loss, example_inputs=(x,), example_target=t, name=f"summed_{name}")
    agree(model, net, (x,), t, loss, tmp_path)


# -- probabilities as targets: over torch's classes on axis 1, and rows that must sum to 1 ---------------------------
class PerPositionClasses(nn.Module):
    def __init__(self):
        super().__init__()
        self.fc = nn.Linear(5, 6)

    def forward(self, x):
        return self.fc(x).view(-1, 3, 2)  # (N, C=3, d=2)


def test_probability_targets_over_torchs_classes_and_rows_that_do_not_sum_to_one(tmp_path):
    """(N, C, d) logits with probability targets of that shape: the softmax was taken over the last axis (a wrong
    loss); rows of targets that do not sum to 1 gave a wrong gradient (p - t assumes they do), now refused in one
    line; F.cross_entropy of float targets in a loss function was refused as class indices."""
    torch.manual_seed(9)
    net = PerPositionClasses().double()
    x = torch.randn(4, 5, dtype=torch.float64)
    t = torch.softmax(torch.randn(4, 3, 2, dtype=torch.float64), 1)
    model = S.from_torch(net, nn.CrossEntropyLoss(), example_inputs=(x,), example_target=t, name="soft_ncd")
    agree(model, net, (x,), t, nn.CrossEntropyLoss(), tmp_path / "ncd")
    flat = nn.Sequential(nn.Linear(5, 3)).double()
    probs = torch.softmax(torch.randn(4, 3, dtype=torch.float64), -1)

    def loss(out, t):
        return F.cross_entropy(out, t)

    model = S.from_torch(flat, loss, example_inputs=(x,), example_target=probs, name="soft_function")
    agree(model, flat, (x,), probs, loss, tmp_path / "function")
    for backend, module in generated_modules(model, tmp_path / "rows").items():
        convert = (lambda a: a.numpy()) if backend == "numpy" else (lambda a: a)
        params = {k: convert(v.detach()) for k, v in flat.state_dict().items()}
        with pytest.raises(ValueError, match=r"^t's rows must each sum to 1 \(probabilities\), but one is off by"):
            module.loss_and_gradients(params, convert(x), convert(torch.rand(4, 3, dtype=torch.float64)))


class ScaledByOne(nn.Module):
    def __init__(self):
        super().__init__()
        self.fc, self.b = nn.Linear(5, 6), nn.Parameter(torch.tensor([[1.3]]))

    def forward(self, x):
        h = self.fc(x)
        return h + self.b * h


def test_a_one_by_one_parameter_keeps_its_shape(tmp_path):
    """A (1, 1) parameter that scales an array got a gradient of shape (): the generated Module could not train."""
    torch.manual_seed(10)
    net = ScaledByOne().double()
    x, t = torch.randn(4, 5, dtype=torch.float64), torch.randn(4, 6, dtype=torch.float64)
    model = S.from_torch(net, nn.MSELoss(), example_inputs=(x,), example_target=t, name="one_by_one")
    agree(model, net, (x,), t, nn.MSELoss(), tmp_path)
    module = generated_modules(model, tmp_path / "again")["torch"]
    m = module.Module(net.state_dict())
    m(x, t).backward()
    assert m.b.grad.shape == (1, 1)


# -- a mask the model holds as a buffer, filled with a number or with -inf; a forward that takes *inputs ----------
class HeldMask(nn.Module):
    """Every third feature zeroed by a boolean buffer, and attention-style scores with a held mask of another shape
    than the causal one (-inf where it holds, then a softmax)."""

    def __init__(self):
        super().__init__()
        self.fc = nn.Linear(4, 6)
        self.register_buffer("keep_out", torch.arange(6) % 3 == 1)
        self.register_buffer("blocked", torch.tensor([[False, True, False], [True, False, False],
                                                      [False, False, True]]))

    def forward(self, x, *more):
        h = self.fc(x).masked_fill(self.keep_out, 0.5)
        scores = h[:, :3, None] * h[:, None, 3:] + more[0][:, :, None]
        return scores.masked_fill(self.blocked, float("-inf")).softmax(-1).flatten(1)


def test_a_mask_held_as_a_buffer_and_a_forward_taking_star_inputs(tmp_path):
    torch.manual_seed(4)
    net = HeldMask().double()
    x, more, t = (torch.randn(5, 4, dtype=torch.float64), torch.randn(5, 3, dtype=torch.float64),
                  torch.randn(5, 9, dtype=torch.float64))
    model = S.from_torch(net, nn.MSELoss(), example_inputs=(x, more), example_target=t, name="held")
    agree(model, net, (x, more), t, nn.MSELoss(), tmp_path)


# -- a softmax over the channels (a per-position classifier's log_softmax(dim=1)); GPT-2's Conv1D as torch.addmm -----
class PerPositionLogSoftmax(nn.Module):
    def __init__(self, dim):
        super().__init__()
        self.conv, self.dim = nn.Conv1d(2, 3, 1), dim

    def forward(self, x):
        h = self.conv(x)
        return F.log_softmax(h, dim=self.dim) + torch.logsumexp(h, dim=self.dim, keepdim=True).softmax(dim=-1)


@pytest.mark.parametrize("dim", [1, -2])
def test_a_softmax_over_an_axis_other_than_the_last(dim, tmp_path):
    torch.manual_seed(11)
    net = PerPositionLogSoftmax(dim).double()
    x, t = torch.randn(3, 2, 5, dtype=torch.float64), torch.randint(0, 3, (3, 5))
    model = S.from_torch(net, nn.NLLLoss(), example_inputs=(x,), example_target=t, name="per_position_softmax")
    agree(model, net, (x,), t, nn.NLLLoss(), tmp_path)


class AddmmConv1D(nn.Module):
    """A linear layer as Hugging Face's GPT-2 writes it: weight (in, out), the positions merged with the batch."""

    def __init__(self, nx, nf):
        super().__init__()
        self.nf = nf
        self.weight, self.bias = nn.Parameter(torch.randn(nx, nf)), nn.Parameter(torch.randn(nf))

    def forward(self, x):
        size_out = x.size()[:-1] + (self.nf,)
        x = torch.addmm(self.bias, x.view(-1, x.size(-1)), self.weight)
        return x.view(size_out)


class GPT2MLP(nn.Module):
    def __init__(self, n=4):
        super().__init__()
        self.c_fc, self.c_proj = AddmmConv1D(n, 4 * n), AddmmConv1D(4 * n, n)

    def forward(self, h):
        h = self.c_fc(h)
        h = 0.5 * h * (1.0 + torch.tanh(math.sqrt(2.0 / math.pi) * (h + 0.044715 * torch.pow(h, 3.0))))
        return self.c_proj(h).narrow(-1, 1, 3) + torch.addmm(self.c_proj.bias, h[:, 1], self.c_proj.weight,
                                                            beta=0.5, alpha=2)[:, None, 1:]


def test_gpt2s_conv1d_as_addmm_and_narrow(tmp_path):
    torch.manual_seed(12)
    net = GPT2MLP().double()
    x, t = torch.randn(3, 2, 4, dtype=torch.float64), torch.randn(3, 2, 3, dtype=torch.float64)
    model = S.from_torch(net, nn.MSELoss(), example_inputs=(x,), example_target=t, name="gpt2_mlp")
    agree(model, net, (x,), t, nn.MSELoss(), tmp_path)


def test_a_softmax_across_the_batch_on_the_last_axis(tmp_path):
    """A contrastive loss: the log-softmax of (N, N) similarities over their last axis, of the batch's size."""
    torch.manual_seed(13)
    net, x = nn.Linear(4, 3).double(), torch.randn(5, 4, dtype=torch.float64)
    t = torch.randn(5, 3, dtype=torch.float64)

    def contrastive(out, t):
        return -(F.log_softmax(out @ t.T, dim=1) * torch.softmax(t @ t.T, dim=-1)).sum(1).mean()

    model = S.from_torch(net, contrastive, example_inputs=(x,), example_target=t, name="contrastive")
    agree(model, net, (x,), t, contrastive, tmp_path)


def test_a_loss_functions_refusal_names_its_line_and_max_norm_is_named():
    """torch keeps only forward methods' lines: a loss function's refused op is placed at the function's own line."""
    net, x = nn.Linear(4, 3).double(), torch.randn(3, 4, dtype=torch.float64)

    def sorted_loss(out, t):
        return (torch.sort(out, dim=1).values - t).pow(2).mean()

    with pytest.raises(S.SymPropError, match=r"^loss \(test_export.py:\d+\): aten.sort.default is not supported"):
        S.derive_network(S.from_torch(net, sorted_loss, example_inputs=(x,), example_target=torch.randn(3, 3)))
    with pytest.raises(S.SymPropError, match=r"over the batch axis \(dim=0\) of a value of 2 axes is not supported"):
        S.from_torch(net, lambda out, t: (F.softmax(out, dim=0) - t).pow(2).mean(), example_inputs=(x,),
                     example_target=torch.randn(3, 3, dtype=torch.float64))
    table = nn.Embedding(5, 3, max_norm=1.0)
    with pytest.raises(S.SymPropError, match=r"max_norm is not supported.*inside nn.Embedding"):
        S.from_torch(nn.Sequential(table, nn.Flatten()), nn.MSELoss(), example_inputs=(torch.tensor([[1, 2], [3, 4]]),))


# -- torch.gather along the last axis: a policy gradient's log π(a|s) with the target's actions; per-position ids ------
class PerPositionGather(nn.Module):
    def __init__(self):
        super().__init__()
        self.fc = nn.Linear(4, 5)

    def forward(self, x, ids):
        return torch.gather(self.fc(x), -1, ids)


def test_gather_of_the_targets_actions_and_of_ids_per_position(tmp_path):
    torch.manual_seed(14)
    policy, x, actions = nn.Linear(4, 3).double(), torch.randn(5, 4, dtype=torch.float64), torch.tensor([0, 2, 1, 2, 0])

    def policy_gradient(logits, actions):
        return -F.log_softmax(logits, dim=1).gather(1, actions.unsqueeze(1)).mean()

    model = S.from_torch(policy, policy_gradient, example_inputs=(x,), example_target=actions, name="policy")
    agree(model, policy, (x,), actions, policy_gradient, tmp_path / "policy")
    net, xs = PerPositionGather().double(), torch.randn(3, 2, 4, dtype=torch.float64)
    ids, t = torch.randint(0, 5, (3, 2, 2)), torch.randn(3, 2, 2, dtype=torch.float64)
    model = S.from_torch(net, nn.MSELoss(), example_inputs=(xs, ids), example_target=t, name="per_position_gather")
    agree(model, net, (xs, ids), t, nn.MSELoss(), tmp_path / "per_position")
    with pytest.raises(S.SymPropError, match=r"torch.gather takes ids of the input's shape but for the axis "):
        S.from_torch(policy, lambda out, a: out.gather(0, a.unsqueeze(1).expand(-1, 3)).mean(),
                     example_inputs=(x,), example_target=actions)


class PixelClasses(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(3, 3, 1)

    def forward(self, x, picks):
        h = self.conv(x)
        return h + torch.gather(h, 1, picks)  # (N, C, H, W) gathered over the channels by (N, 1, H, W) ids


def dice_loss(pred, true_masks):
    """A Dice loss over the classes, its target one-hot from the class indices (as segmentation training loops)."""
    p = F.softmax(pred, dim=1)
    target = F.one_hot(true_masks, 3).permute(0, 3, 1, 2).double()
    return 1 - (2 * (p * target).sum() + 1e-6) / (p.sum() + target.sum() + 1e-6)


def test_gather_over_the_channels_and_a_one_hot_target_in_the_loss(tmp_path):
    torch.manual_seed(15)
    net = PixelClasses().double()
    x, picks = torch.randn(2, 3, 4, 4, dtype=torch.float64), torch.randint(0, 3, (2, 1, 4, 4))
    masks = torch.randint(0, 3, (2, 4, 4))
    model = S.from_torch(net, dice_loss, example_inputs=(x, picks), example_target=masks, name="dice")
    agree(model, net, (x, picks), masks, dice_loss, tmp_path)
    with pytest.raises(S.SymPropError, match=r"pass nn.NLLLoss\(\) as the loss instead\) \(in torch's lowering of "):
        S.from_torch(nn.Conv1d(2, 3, 1).double(), lambda y, t: F.nll_loss(F.log_softmax(y, dim=1), t),
                     example_inputs=(torch.randn(2, 2, 4, dtype=torch.float64),),
                     example_target=torch.randint(0, 3, (2, 4)))


# -- Hugging Face GPT-2's causal mask: torch.where(a tril buffer of booleans, scores, a 0-d finfo.min made in forward)
class WhereMasked(nn.Module):
    def __init__(self, fill, keep_first: bool):
        super().__init__()
        self.fill, self.keep_first, self.fc = fill, keep_first, nn.Linear(4, 4)
        self.register_buffer("bias", torch.tril(torch.ones(4, 4, dtype=torch.bool)).view(1, 4, 4), persistent=False)

    def forward(self, x):
        h = self.fc(x)
        w = h @ h.transpose(-1, -2)
        fill = torch.full([], self.fill, dtype=w.dtype)
        w = torch.where(self.bias, w, fill) if self.keep_first else torch.where(~self.bias, fill, w)
        return torch.softmax(w, dim=-1) @ h


@pytest.mark.parametrize("fill, keep_first", [(torch.finfo(torch.float64).min, True), (float("-inf"), True),
                                              (-1e4, False)], ids=["finfo-min", "minus-inf", "reversed"])
def test_gpt2s_causal_mask_as_torch_where(fill, keep_first, tmp_path):
    torch.manual_seed(16)
    net = WhereMasked(fill, keep_first).double()
    x, t = torch.randn(2, 4, 4, dtype=torch.float64), torch.randn(2, 4, 4, dtype=torch.float64)
    model = S.from_torch(net, nn.MSELoss(), example_inputs=(x,), example_target=t, name="where_masked")
    agree(model, net, (x,), t, nn.MSELoss(), tmp_path)


def test_a_float_cast_in_a_loss_function_is_warned_at_the_functions_line():
    """A Dice loss's .float() in a float64 model: read as the identity, said at the loss function's line."""
    net, x = nn.Linear(3, 3).double(), torch.randn(4, 3, dtype=torch.float64)

    def rounded(out, t):
        return ((out.float() - t) ** 2).mean()

    model = S.from_torch(net, rounded, example_inputs=(x,), example_target=torch.randn(4, 3, dtype=torch.float64))
    (warning,) = S.derive_network(model).warnings
    assert re.match(r"loss \(test_export.py:\d+\): a cast to float32 is read as the identity", warning), warning


# -- a loss module of one's own, and torch's loss modules that symprop has no layer for: read as their forward -----
class FocalLoss(nn.Module):
    def __init__(self, gamma=2.0):
        super().__init__()
        self.gamma = gamma

    def forward(self, logits, target):
        log_p = F.log_softmax(logits, dim=-1).gather(1, target.unsqueeze(1)).squeeze(1)
        return (-(1 - log_p.exp()) ** self.gamma * log_p).mean()


@pytest.mark.parametrize("case", ["focal", "poisson_nll", "multilabel_soft_margin"])
def test_a_loss_module_symprop_has_no_layer_for_is_read_as_its_forward(case, tmp_path):
    torch.manual_seed(4)
    net, x = nn.Linear(5, 3).double(), torch.randn(4, 5, dtype=torch.float64)
    loss, t = {"focal": (FocalLoss(), torch.randint(0, 3, (4,))),
               "poisson_nll": (nn.PoissonNLLLoss(), torch.poisson(torch.rand(4, 3, dtype=torch.float64) * 3)),
               "multilabel_soft_margin": (nn.MultiLabelSoftMarginLoss(), (torch.rand(4, 3) > 0.5).double())}[case]
    model = S.from_torch(net, loss, example_inputs=(x,), example_target=t, name=case)
    agree(model, net, (x,), t, loss, tmp_path)


def test_a_loss_module_with_parameters_of_its_own_is_refused_in_one_line():
    class Weighted(nn.Module):  # a learned uncertainty weight: a parameter that symprop would not train
        def __init__(self):
            super().__init__()
            self.log_var = nn.Parameter(torch.zeros(1))

        def forward(self, y, t):
            return F.mse_loss(y, t) * torch.exp(-self.log_var) + self.log_var

    x, t = torch.randn(4, 5), torch.randn(4, 3)
    with pytest.raises(S.SymPropError, match=r"^loss: Weighted has parameters of its own") as error:
        S.from_torch(nn.Linear(5, 3), Weighted(), example_inputs=(x,), example_target=t)
    assert "\n" not in str(error.value)


# -- CLIP's learned temperature: a 0-d parameter, returned beside the batch's embeddings -------------------------------
class ScaledEmbeddings(nn.Module):
    def __init__(self):
        super().__init__()
        self.proj = nn.Linear(5, 4)
        self.logit_scale = nn.Parameter(torch.ones([]) * math.log(1 / 0.07))

    def forward(self, x):
        return F.normalize(self.proj(x), dim=-1), self.logit_scale.exp()


def scaled_mse(out, t):
    z, scale = out
    return F.mse_loss(z * scale, t)


def test_a_0d_parameter_returned_beside_the_batch_is_a_parameter_like_any_other(tmp_path):
    torch.manual_seed(5)
    net = ScaledEmbeddings().double()
    x, t = torch.randn(4, 5, dtype=torch.float64), torch.randn(4, 4, dtype=torch.float64)
    model = S.from_torch(net, scaled_mse, example_inputs=(x,), example_target=t, name="scaled")
    assert model.parameters["logit_scale"] == ()
    agree(model, net, (x,), t, scaled_mse, tmp_path)


# -- torch.max(x, dim): its values (PointNet's max over points, CBAM's over channels); its indices are refused ------
class PointFeatures(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv1 = nn.Conv1d(3, 4, 1)
        self.fc = nn.Linear(4, 2)

    def forward(self, x):
        x = torch.relu(self.conv1(x))
        x = torch.max(x, 2, keepdim=True)[0]
        return self.fc(x.view(-1, 4))


class ChannelMaxAndMean(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(2, 1, 3, padding=1)
        self.head = nn.Linear(2 * 16, 3)

    def forward(self, x):
        mean = torch.mean(x, dim=1, keepdim=True)
        top, _ = torch.max(x, dim=1, keepdim=True)
        return self.head((x * torch.sigmoid(self.conv(torch.cat([mean, top], dim=1)))).flatten(1))


class TiedMaxima(nn.Module):  # relu's zeros tie: the first of them takes the gradient, as torch's max(dim) gives it
    def __init__(self):
        super().__init__()
        self.linear = nn.Linear(4, 6)

    def forward(self, x):
        h = torch.relu(self.linear(x) - 1.0)
        return h + h.max(dim=1).values.unsqueeze(1)


@pytest.mark.parametrize("case", ["points", "channels", "ties"])
def test_torch_max_along_a_dim_takes_its_values(case, tmp_path):
    torch.manual_seed(6)
    net, x, t, loss = {
        "points": (PointFeatures(), torch.randn(3, 3, 5), torch.tensor([0, 1, 1]), nn.CrossEntropyLoss()),
        "channels": (ChannelMaxAndMean(), torch.randn(3, 2, 4, 4), torch.tensor([0, 1, 2]), nn.CrossEntropyLoss()),
        "ties": (TiedMaxima(), torch.randn(3, 4), torch.randn(3, 6), nn.MSELoss())}[case]
    net, x = net.double(), x.double()
    t = t.double() if t.is_floating_point() else t
    model = S.from_torch(net, loss, example_inputs=(x,), example_target=t, name=f"max_{case}")
    agree(model, net, (x,), t, loss, tmp_path)


def test_torch_max_along_a_dim_refuses_its_indices_where_they_are_read():
    class Indices(nn.Module):
        def __init__(self):
            super().__init__()
            self.linear = nn.Linear(4, 6)

        def forward(self, x):
            h = self.linear(x)
            _, i = h.max(dim=1)
            return h * i.unsqueeze(1).to(h.dtype)

    with pytest.raises(S.SymPropError, match=r"^forward \(test_export.py:\d+\): torch.max\(x, dim\)'s indices are"):
        S.from_torch(Indices(), nn.MSELoss(), example_inputs=(torch.randn(3, 4),), example_target=torch.randn(3, 6))


# -- F.lp_pool2d: torch lowers it to (sign(a)·relu(|a|)·k)^(1/p), whose negative piece is NaN, as in torch -----------
class PowerAveragePool(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(1, 2, 3)
        self.fc = nn.Linear(2 * 2 * 2, 3)

    def forward(self, x):
        return self.fc(F.lp_pool2d(torch.tanh(self.conv(x)), 2, 2).flatten(1))


def test_lp_pooling_derives_where_its_power_of_a_sign_has_an_imaginary_piece(tmp_path):
    """(−1)^½ in a piece that no entry takes: it was a crash of the printers (a complex number), now NaN."""
    torch.manual_seed(7)
    net, x, t = PowerAveragePool().double(), torch.randn(2, 1, 6, 6, dtype=torch.float64), torch.tensor([0, 2])
    model = S.from_torch(net, nn.CrossEntropyLoss(), example_inputs=(x,), example_target=t, name="lp_pool")
    with warnings.catch_warnings():  # no complex number in the generated code, not even in a piece never taken
        warnings.filterwarnings("error", "Casting complex values")
        agree(model, net, (x,), t, nn.CrossEntropyLoss(), tmp_path)


# -- pyGAT's attention over a fixed graph: torch.where(adjacency buffer, e, full_like(e, -9e15)) ----------------------
class GraphAttention(nn.Module):
    def __init__(self):
        super().__init__()
        self.register_buffer("adj", torch.tensor([[1, 1, 0], [0, 1, 1], [1, 0, 1]]).bool())
        self.W = nn.Linear(4, 4, bias=False)
        self.a = nn.Linear(8, 1, bias=False)

    def forward(self, h):  # h: (N, nodes, features)
        wh = self.W(h)
        pairs = torch.cat([wh.unsqueeze(2).expand(-1, -1, 3, -1), wh.unsqueeze(1).expand(-1, 3, -1, -1)], dim=-1)
        e = F.leaky_relu(self.a(pairs).squeeze(-1), 0.2)
        attention = torch.softmax(torch.where(self.adj, e, torch.full_like(e, -9e15)), dim=-1)
        return F.elu(attention @ wh).flatten(1)


def test_where_of_a_constant_mask_that_is_not_causal_reads_it_as_a_table(tmp_path):
    torch.manual_seed(8)
    net, x, t = GraphAttention().double(), torch.randn(2, 3, 4, dtype=torch.float64), torch.randn(2, 12).double()
    model = S.from_torch(net, nn.MSELoss(), example_inputs=(x,), example_target=t, name="graph_attention")
    agree(model, net, (x,), t, nn.MSELoss(), tmp_path)


# -- matmul broadcast over batch axes: a graph's adjacency times a batch of graphs, a capsule layer's W @ u -----------
class BatchOfGraphs(nn.Module):
    def __init__(self):
        super().__init__()
        adjacency = torch.rand(5, 5)
        self.register_buffer("adj", adjacency / adjacency.sum(1, keepdim=True))
        self.w = nn.Linear(3, 2)

    def forward(self, x):  # (N, nodes, features)
        return torch.relu(torch.matmul(self.adj, self.w(x))).flatten(1)


class CapsuleVotes(nn.Module):
    def __init__(self):
        super().__init__()
        self.W = nn.Parameter(torch.randn(1, 4, 3, 2, 5) * 0.3)

    def forward(self, u):  # (N, 4, 1, 5, 1): each input capsule's vote for each output capsule
        return (self.W @ u).flatten(1)


@pytest.mark.parametrize("case", ["graphs", "capsules"])
def test_matmul_broadcasts_batch_axes_as_torch_does(case, tmp_path):
    torch.manual_seed(9)
    net, x, t = {"graphs": (BatchOfGraphs(), torch.randn(3, 5, 3), torch.randn(3, 10)),
                 "capsules": (CapsuleVotes(), torch.randn(3, 4, 1, 5, 1), torch.randn(3, 24))}[case]
    net, x, t = net.double(), x.double(), t.double()
    model = S.from_torch(net, nn.MSELoss(), example_inputs=(x,), example_target=t, name=f"broadcast_{case}")
    agree(model, net, (x,), t, nn.MSELoss(), tmp_path)


# -- a recommender's (user, item) pairs in one input: each column's ids index a table of its own ----------------------
class PairFactorization(nn.Module):
    def __init__(self):
        super().__init__()
        self.user, self.item = nn.Embedding(5, 4), nn.Embedding(7, 4)

    def forward(self, x):  # x[:, 0] user ids, x[:, 1] item ids
        return (self.user(x[:, 0]) * self.item(x[:, 1])).sum(1, keepdim=True)


def test_each_column_of_an_id_input_is_checked_against_its_own_table(tmp_path):
    """Item id 6 is valid (7 items), though the user table has 5 rows: it was refused by the generated modules."""
    torch.manual_seed(10)
    net = PairFactorization().double()
    x, t = torch.tensor([[0, 6], [4, 2], [1, 2], [3, 0]]), torch.randn(4, 1, dtype=torch.float64)
    model = S.from_torch(net, nn.MSELoss(), example_inputs=(x,), example_target=t, name="pairs")
    assert model.index_ranges == {"x": [5, 7]}
    agree(model, net, (x,), t, nn.MSELoss(), tmp_path)
    params = {key: value.detach() for key, value in net.state_dict().items()}
    bad = torch.tensor([[5, 0], [0, 0], [0, 0], [0, 0]])  # a user id past the user table
    for backend, module in generated_modules(model, tmp_path).items():
        convert = (lambda a: a.numpy()) if backend == "numpy" else (lambda a: a)
        with pytest.raises(ValueError, match=r"x holds ids in \[0, \[5, 7\]\), got 5"):
            module.loss_and_gradients({k: convert(v) for k, v in params.items()}, convert(bad), convert(t))


# -- bidirectional recurrent layers: torch lowers the backward direction to a flip over time ---------------------------
class BidirectionalTagger(nn.Module):
    def __init__(self, kind):
        super().__init__()
        self.rnn = getattr(nn, kind)(3, 4, batch_first=True, bidirectional=True)
        self.fc = nn.Linear(8, 2)

    def forward(self, x):
        out, _ = self.rnn(x)
        return self.fc(out[:, -1, :])


@pytest.mark.parametrize("kind", ["LSTM", "GRU"])
def test_bidirectional_recurrent_layers_derive(kind, tmp_path):
    torch.manual_seed(11)
    net, x, t = BidirectionalTagger(kind).double(), torch.randn(3, 4, 3, dtype=torch.float64), torch.tensor([0, 1, 1])
    model = S.from_torch(net, nn.CrossEntropyLoss(), example_inputs=(x,), example_target=t, name=f"bi_{kind}")
    agree(model, net, (x,), t, nn.CrossEntropyLoss(), tmp_path)


# -- CLIP's and InfoNCE's loss: cross-entropy over a batch's (N, N) similarities, each row's class its own index -------
class TwoTowers(nn.Module):
    def __init__(self):
        super().__init__()
        self.image, self.text = nn.Linear(5, 4), nn.Linear(3, 4)

    def forward(self, x, y):
        return F.normalize(self.image(x), dim=-1), F.normalize(self.text(y), dim=-1)


def clip_loss(out, t, temperature=0.1):
    a, b = out
    logits = a @ b.T / temperature
    labels = torch.arange(logits.size(0))
    return (F.cross_entropy(logits, labels) + F.cross_entropy(logits.T, labels)) / 2


def positive_pairs_loss(out, t):  # the same, as SimCLR-style code indexes the diagonal
    a, b = out
    log_p = F.log_softmax(a @ b.T / 0.5, dim=1)
    n = log_p.size(0)
    return -log_p[torch.arange(n), torch.arange(n)].mean() + 0.1 * torch.diagonal(a @ b.T).sum()


@pytest.mark.parametrize("loss", [clip_loss, positive_pairs_loss])
def test_a_contrastive_loss_over_the_batchs_similarities(loss, tmp_path):
    torch.manual_seed(12)
    net = TwoTowers().double()
    x, y, t = torch.randn(4, 5).double(), torch.randn(4, 3).double(), torch.zeros(4, 1, dtype=torch.float64)
    model = S.from_torch(net, loss, example_inputs=(x, y), example_target=t, name=loss.__name__)
    agree(model, net, (x, y), t, loss, tmp_path)


# -- a batch-first forward around a sequence-first layer: read sequence first, it fails, and batch first it derives ----
class TransposesForItsGRU(nn.Module):
    def __init__(self):
        super().__init__()
        self.gru = nn.GRU(3, 4)  # batch_first=False, torch's default
        self.fc = nn.Linear(4, 2)

    def forward(self, x):  # (batch, time, features)
        _, h = self.gru(x.transpose(0, 1))
        return self.fc(h[-1])


def test_a_batch_first_forward_around_a_sequence_first_layer_is_read_batch_first(tmp_path):
    torch.manual_seed(13)
    net, x, t = TransposesForItsGRU().double(), torch.randn(3, 4, 3, dtype=torch.float64), torch.randn(3, 2).double()
    model = S.from_torch(net, nn.MSELoss(), example_inputs=(x,), example_target=t, name="transposes")
    assert model.net.batch_axis == 0
    agree(model, net, (x,), t, nn.MSELoss(), tmp_path)


def test_a_forward_returning_none_beside_its_logits_is_told_how_to_give_its_targets():
    class OwnLoss(nn.Module):  # makemore's and nanoGPT's idiom: the loss only when targets are given
        def __init__(self):
            super().__init__()
            self.fc = nn.Linear(3, 4)

        def forward(self, x, targets=None):
            logits = self.fc(x)
            return logits, None if targets is None else F.cross_entropy(logits, targets)

    with pytest.raises(S.SymPropError, match=r"^forward \(test_export.py:\d+\): forward returns something other "
                                             r"than tensors \(NoneType\).*lambda out: out\[1\] as the loss$") as error:
        S.from_torch(OwnLoss(), lambda out, t: F.cross_entropy(out[0], t), example_inputs=(torch.randn(3, 3),),
                     example_target=torch.tensor([0, 1, 2]))
    assert "\n" not in str(error.value)


def test_a_forward_returning_a_dict_is_told_to_return_a_tuple():
    class Outputs(nn.Module):  # the idiom of model hubs: a dict of named outputs
        def __init__(self):
            super().__init__()
            self.fc = nn.Linear(3, 4)

        def forward(self, x):
            return {"logits": self.fc(x)}

    with pytest.raises(S.SymPropError, match=r"^forward \(test_export.py:\d+\): forward returns a dict \(keys "
                                             r"'logits': return a tuple of its tensors\)"):
        S.from_torch(Outputs(), lambda out, t: F.cross_entropy(out["logits"], t), example_inputs=(torch.randn(3, 3),),
                     example_target=torch.tensor([0, 1, 2]))


def test_from_torch_leaves_the_state_that_forward_keeps_on_the_module_as_it_was():
    """Truncated backpropagation through time keeps the last hidden state, self.hidden = h.detach(): reading the
    model runs forward, which must not leave a hidden state (or a fake tensor of torch.export's) behind."""

    class Stateful(nn.Module):
        def __init__(self):
            super().__init__()
            self.gru, self.fc, self.hidden = nn.GRU(3, 4, batch_first=True), nn.Linear(4, 2), None

        def forward(self, x):
            out, h = self.gru(x, self.hidden)
            self.hidden = h.detach()
            return self.fc(out)

    net = Stateful()
    S.from_torch(net, nn.MSELoss(), example_inputs=(torch.randn(3, 4, 3),), example_target=torch.randn(3, 4, 2))
    assert net.hidden is None


def test_a_tuple_among_the_example_inputs_is_named():
    class WithHidden(nn.Module):  # word_language_model's forward(input, hidden), hidden = (h, c)
        def __init__(self):
            super().__init__()
            self.lstm = nn.LSTM(3, 4)

        def forward(self, x, hidden):
            return self.lstm(x, hidden)[0]

    hidden = (torch.zeros(1, 2, 4), torch.zeros(1, 2, 4))
    with pytest.raises(S.SymPropError, match=r"^example_inputs: example_inputs\[1\] is a tuple: symprop takes each "
                                             r"input of forward as one tensor \(an LSTM's \(h, c\) as two inputs of "
                                             r"forward\)$"):
        S.from_torch(WithHidden(), nn.MSELoss(), example_inputs=(torch.randn(5, 2, 3), hidden),
                     example_target=torch.randn(5, 2, 4))


def test_ctc_loss_is_refused_naming_it():
    def ctc(out, t):
        return F.ctc_loss(out.log_softmax(-1).transpose(0, 1), t, torch.full((2,), 5), torch.full((2,), 2))

    with pytest.raises(S.SymPropError, match=r"aten._ctc_loss.Tensor is not supported by symprop: the shape of its "
                                             r"result depends on the data$"):
        S.from_torch(nn.Linear(3, 4), ctc, example_inputs=(torch.randn(2, 5, 3),),
                     example_target=torch.randint(1, 4, (2, 2)))


# -- NICE's coupling layer: the even and odd entries, x[:, ::2] and x[:, 1::2] -------------------------------------
class AdditiveCoupling(nn.Module):
    def __init__(self):
        super().__init__()
        self.m = nn.Sequential(nn.Linear(3, 8), nn.ReLU(), nn.Linear(8, 3))

    def forward(self, x):
        even, odd = x[:, ::2], x[:, 1::2]
        return torch.cat([even, odd + self.m(even)], dim=1)


def test_slices_with_a_step_derive(tmp_path):
    torch.manual_seed(14)
    net, x, t = AdditiveCoupling().double(), torch.randn(3, 6, dtype=torch.float64), torch.randn(3, 6).double()
    model = S.from_torch(net, nn.MSELoss(), example_inputs=(x,), example_target=t, name="coupling")
    agree(model, net, (x,), t, nn.MSELoss(), tmp_path)


# -- a decoder's start token for every sequence, torch.full((B, 1), SOS) or torch.empty(B, 1).fill_(SOS) --------------
class StartToken(nn.Module):
    def __init__(self, how):
        super().__init__()
        self.how = how
        self.embedding, self.out = nn.Embedding(4, 3), nn.Linear(3, 2)

    def forward(self, x, target):  # teacher forcing: the start token, then the target's previous token
        if self.how == "full":
            token = torch.full((x.size(0), 1), 2, dtype=torch.long)
        else:
            token = torch.empty(x.size(0), 1, dtype=torch.long).fill_(2)
        outputs = []
        for i in range(target.size(1)):
            outputs.append(self.out(self.embedding(token) + x))
            token = target[:, i].unsqueeze(1)
        return torch.cat(outputs, 1).flatten(1)


@pytest.mark.parametrize("how", ["full", "empty_fill"])
def test_a_start_token_made_in_forward_is_the_tables_row_for_every_sequence(how, tmp_path):
    torch.manual_seed(15)
    net = StartToken(how).double()
    x, target, t = torch.randn(3, 1, 3).double(), torch.randint(0, 4, (3, 2)), torch.randn(3, 4).double()
    model = S.from_torch(net, nn.MSELoss(), example_inputs=(x, target), example_target=t, name=f"start_{how}")
    agree(model, net, (x, target), t, nn.MSELoss(), tmp_path)


def test_a_failed_trace_names_the_users_line():
    """pack_padded_sequence's sizes are data: torch.export fails inside nn.LSTM, and the refusal names the line."""
    from torch.nn.utils.rnn import pack_padded_sequence

    class Packed(nn.Module):
        def __init__(self):
            super().__init__()
            self.lstm, self.fc = nn.LSTM(4, 5, batch_first=True), nn.Linear(5, 3)

        def forward(self, x, lengths):
            packed = pack_padded_sequence(x, lengths, batch_first=True, enforce_sorted=False)
            _, (h, _) = self.lstm(packed)
            return self.fc(h[-1])

    with pytest.raises(S.SymPropError, match=r"^forward \(test_export.py:\d+\): torch.export cannot trace it") as error:
        S.from_torch(Packed(), nn.CrossEntropyLoss(), example_inputs=(torch.randn(3, 4, 4), torch.tensor([2, 4, 3])),
                     example_target=torch.tensor([0, 2, 1]))
    assert "\n" not in str(error.value)


class PairsAndTime(nn.Module):
    def __init__(self):
        super().__init__()
        self.user, self.item = nn.Embedding(5, 4), nn.Embedding(7, 4)

    def forward(self, x):  # x[:, 2]: a timestamp, which the rows of the data set carry and no table reads
        return (self.user(x[:, 0]) * self.item(x[:, 1])).sum(1, keepdim=True)


def test_a_column_that_no_table_reads_is_not_checked_as_ids(tmp_path):
    torch.manual_seed(16)
    net = PairsAndTime().double()
    x, t = torch.tensor([[0, 6, 500], [4, 2, -3], [1, 2, 7]]), torch.randn(3, 1, dtype=torch.float64)
    model = S.from_torch(net, nn.MSELoss(), example_inputs=(x,), example_target=t, name="pairs_time")
    assert model.index_ranges == {"x": [5, 7, None]}
    agree(model, net, (x,), t, nn.MSELoss(), tmp_path)


def moco_loss(out, t):  # the positive is column 0 of every row: labels torch.zeros(N, dtype=torch.long)
    return F.cross_entropy(out, torch.zeros(out.size(0), dtype=torch.long))


def hardest_error(out, t):  # the largest squared error over the batch, for each output: a max over the batch axis
    return (out - t).pow(2).amax(0).sum()


@pytest.mark.parametrize("loss", [moco_loss, hardest_error])
def test_losses_of_a_constant_class_and_of_a_max_over_the_batch(loss, tmp_path):
    torch.manual_seed(17)
    net, x, t = nn.Linear(4, 3).double(), torch.randn(5, 4, dtype=torch.float64), torch.randn(5, 3).double()
    model = S.from_torch(net, loss, example_inputs=(x,), example_target=t, name=loss.__name__)
    agree(model, net, (x,), t, loss, tmp_path)


def test_the_rows_of_the_batch_in_arithmetic_are_refused_in_one_line():
    def shifted(out, t):  # the next row's as each row's class: (arange(n) + 1) % n
        logits = out @ out.T
        return F.cross_entropy(logits, (torch.arange(logits.size(0)) + 1) % logits.size(0))

    with pytest.raises(S.SymPropError, match=r"^loss \(test_export.py:\d+\): torch.arange\(n\) of the batch size is "
                                             r"read as the rows of .*; add of it is not supported$"):
        S.from_torch(nn.Linear(4, 3), shifted, example_inputs=(torch.randn(5, 4),), example_target=torch.randn(5, 3))


# -- a sequence-first recurrent classifier that reads the last state: its output and targets are batch first -------
class LastStateClassifier(nn.Module):
    def __init__(self):
        super().__init__()
        self.gru, self.fc = nn.GRU(3, 4, bidirectional=True), nn.Linear(8, 2)

    def forward(self, x):  # (time, batch, features)
        _, h = self.gru(x)
        return self.fc(torch.cat([h[-2], h[-1]], dim=1))


def test_a_sequence_first_classifier_of_the_last_state_takes_batch_first_targets(tmp_path):
    """Its output (N, 2) is batch first: so is its target (N, 2), which was read with the batch on axis 1."""
    torch.manual_seed(18)
    net, loss = LastStateClassifier().double(), nn.BCEWithLogitsLoss()
    x, t = torch.randn(5, 3, 3, dtype=torch.float64), torch.rand(3, 2, dtype=torch.float64)
    model = S.from_torch(net, loss, example_inputs=(x,), example_target=t, name="last_state")
    net.zero_grad()
    want = loss(net(x), t)
    want.backward()
    for backend, module in generated_modules(model, tmp_path).items():
        convert = (lambda a: a.detach().numpy()) if backend == "numpy" else (lambda a: a.detach())
        got, grads = module.loss_and_gradients({k: convert(p) for k, p in net.named_parameters()},
                                               convert(x.transpose(0, 1)), convert(t))
        assert relative_error(got, want.detach()) <= TOLERANCE
        for key, p in net.named_parameters():
            assert relative_error(grads[key], p.grad) <= TOLERANCE, (backend, key)


# -- OpenAI's CLIP returns the (N, N) logits themselves, the batch on both axes ---------------------------------------
class LogitsPerImage(nn.Module):
    def __init__(self):
        super().__init__()
        self.image, self.text = nn.Linear(5, 4), nn.Linear(3, 4)
        self.logit_scale = nn.Parameter(torch.ones([]) * 2.0)

    def forward(self, image, text):
        a, b = F.normalize(self.image(image), dim=-1), F.normalize(self.text(text), dim=-1)
        logits_per_image = self.logit_scale.exp() * a @ b.t()
        return logits_per_image, logits_per_image.t()


def symmetric_cross_entropy(out, t):
    per_image, per_text = out
    labels = torch.arange(per_image.shape[0])
    return (F.cross_entropy(per_image, labels) + F.cross_entropy(per_text, labels)) / 2


def test_a_forward_that_returns_the_batchs_n_by_n_logits(tmp_path):
    torch.manual_seed(19)
    net = LogitsPerImage().double()
    x, y, t = torch.randn(4, 5).double(), torch.randn(4, 3).double(), torch.zeros(4, 1, dtype=torch.float64)
    model = S.from_torch(net, symmetric_cross_entropy, example_inputs=(x, y), example_target=t, name="logits_nn")
    agree(model, net, (x, y), t, symmetric_cross_entropy, tmp_path)


def test_a_softmax_over_the_batch_of_returned_n_by_n_logits_is_refused_as_such():
    """CLIP's loss over the texts when forward returns only the logits per image: the softmax of logits.t() runs
    over the batch axis; the refusal says so, where it blamed a read of the batch size alone."""
    class PerImage(LogitsPerImage):
        def forward(self, image, text):
            return super().forward(image, text)[0]

    def per_text(out, t):
        return F.cross_entropy(out.t(), torch.arange(out.shape[0]))

    x, y, t = torch.randn(4, 5), torch.randn(4, 3), torch.zeros(4, 1)
    with pytest.raises(S.SymPropError, match=r"the batch axis must stay free.*normalizes \(N, N\) scores over the "
                                             r"batch axis \(CLIP's loss of the texts") as refused:
        S.from_torch(PerImage(), per_text, example_inputs=(x, y), example_target=t)
    assert "\n" not in str(refused.value)


def test_torch_max_along_the_batch_axis_is_refused_for_amax():
    """torch gives the gradient of a tie over the batch to one row, which symprop cannot pick out of N rows."""
    with pytest.raises(S.SymPropError, match=r"torch.max\(x, dim\) over the batch axis is not supported; "
                                             r"torch.amax\(x, dim\) is"):
        S.from_torch(nn.Linear(4, 3), lambda out, t: (out - t).pow(2).max(0).values.sum(),
                     example_inputs=(torch.randn(5, 4),), example_target=torch.randn(5, 3))


def test_nll_loss_of_the_rows_own_class_is_the_diagonal(tmp_path):
    def nll_of_pairs(out, t):
        a, b = out
        log_p = F.log_softmax(a @ b.T / 0.5, dim=1)
        return F.nll_loss(log_p, torch.arange(log_p.size(0)))

    torch.manual_seed(20)
    net = TwoTowers().double()
    x, y, t = torch.randn(4, 5).double(), torch.randn(4, 3).double(), torch.zeros(4, 1, dtype=torch.float64)
    model = S.from_torch(net, nll_of_pairs, example_inputs=(x, y), example_target=t, name="nll_pairs")
    agree(model, net, (x, y), t, nll_of_pairs, tmp_path)


def test_a_loss_module_with_a_frozen_parameter_is_read_through_its_forward(tmp_path):
    class Weighted(nn.Module):
        def __init__(self):
            super().__init__()
            self.w = nn.Parameter(torch.tensor([1.0, 2.0, 0.5], dtype=torch.float64), requires_grad=False)

        def forward(self, y, t):
            return ((y - t) ** 2 * self.w).mean()

    torch.manual_seed(21)
    net, loss = nn.Linear(4, 3).double(), Weighted()
    x, t = torch.randn(5, 4, dtype=torch.float64), torch.randn(5, 3, dtype=torch.float64)
    model = S.from_torch(net, loss, example_inputs=(x,), example_target=t, name="frozen_weights")
    agree(model, net, (x,), t, loss, tmp_path)


def test_from_torch_undoes_what_forward_changes_in_place_on_the_module():
    class Accumulates(nn.Module):
        def __init__(self):
            super().__init__()
            self.fc, self.seen = nn.Linear(3, 2), torch.zeros(3)

        def forward(self, x):
            self.seen.add_(x.detach().sum(0))
            return self.fc(x)

    net = Accumulates()
    S.from_torch(net, nn.MSELoss(), example_inputs=(torch.randn(4, 3),), example_target=torch.randn(4, 2))
    assert torch.equal(net.seen, torch.zeros(3))


def test_an_example_whose_first_two_axes_have_one_size_is_ambiguous_with_a_sequence_first_layer():
    class Transposes(nn.Module):  # batch first, around a default (sequence-first) MultiheadAttention
        def __init__(self):
            super().__init__()
            self.attention, self.fc = nn.MultiheadAttention(4, 2), nn.Linear(4, 2)

        def forward(self, x):
            y = x.transpose(0, 1)
            h, _ = self.attention(y, y, y)
            return self.fc(h.transpose(0, 1).mean(1))

    with pytest.raises(S.SymPropError, match=r"^example_inputs: the batch axis of the examples is ambiguous"):
        S.from_torch(Transposes().eval(), nn.MSELoss(), example_inputs=(torch.randn(4, 4, 4),),
                     example_target=torch.randn(4, 2))
    model = S.from_torch(Transposes().eval(), nn.MSELoss(), example_inputs=(torch.randn(3, 5, 4),),
                         example_target=torch.randn(3, 2))
    assert model.net.batch_axis == 0 and model.input_shapes["x"] == ("batch", 5, 4)


class CountsItsSteps(nn.Module):
    """A step counter, and a layer that names its statistics as torch's norm layers do without being one."""

    def __init__(self):
        super().__init__()
        self.fc, self.track_running_stats = nn.Linear(3, 2), True
        self.register_buffer("steps", torch.zeros((), dtype=torch.long))
        self.register_buffer("running_mean", torch.zeros(3))

    def forward(self, x):
        self.steps += 1
        return self.fc(x - self.running_mean)


class LooksLikeANorm(CountsItsSteps):
    def forward(self, x):
        with torch.no_grad():
            self.running_mean.mul_(0.9).add_(0.1 * x.mean(0))
        return self.fc(x - self.running_mean)


@pytest.mark.parametrize("net, message", [
    (CountsItsSteps().eval(), r"changes the buffer 'steps': symprop derives the gradients, but its modules would "
                              r"leave the buffer as it was$"),
    (LooksLikeANorm(), r"changes the buffer 'running_mean'.*use torch's batch norm layers")])
def test_buffers_that_forward_changes_are_refused_unless_torchs_norm_layers(net, message):
    x, t = torch.randn(4, 3), torch.randn(4, 2)
    with pytest.raises(S.SymPropError, match=message):
        S.derive_network(S.from_torch(net, nn.MSELoss(), example_inputs=(x,), example_target=t))
