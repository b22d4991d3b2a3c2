"""DistributedDataParallel trains the generated Module with the closed forms: two processes (gloo, on the
loopback address), each on half of the batch, reach the parameters that one process reaches on the whole."""

from __future__ import annotations

import importlib.util
import socket
import subprocess
import sys

import torch

import symprop as S

STEPS, LR = 10, 0.1

WORKER = r"""
import importlib.util, sys, torch
path, rank, world, port, out = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), sys.argv[4], sys.argv[5]
spec = importlib.util.spec_from_file_location("generated_module", path)
module = importlib.util.module_from_spec(spec)
spec.loader.exec_module(module)
generator = torch.Generator().manual_seed(0)
x = torch.randn(16, 4, generator=generator, dtype=torch.float64)
t = torch.randint(0, 3, (16,), generator=generator)
model = module.Module(seed=0)
if world > 1:
    import torch.distributed as dist
    dist.init_process_group("gloo", init_method=f"tcp://127.0.0.1:{port}", rank=rank, world_size=world)
    model = torch.nn.parallel.DistributedDataParallel(model)
    x, t = x[rank::world], t[rank::world]
optimizer = torch.optim.SGD(model.parameters(), lr=LR)
for _ in range(STEPS):
    optimizer.zero_grad()
    model(x, t).backward()
    optimizer.step()
if rank == 0:
    state = (model.module if world > 1 else model).state_dict()
    torch.save({k: v.detach().clone() for k, v in state.items()}, out)
if world > 1:
    dist.barrier()  # both done before either tears down gloo
    dist.destroy_process_group()
    import os
    os._exit(0)  # gloo's threads can abort an interpreter's teardown ("terminate called ..."): skip it
""".replace("LR", repr(LR)).replace("STEPS", str(STEPS))


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_ddp_on_two_shards_matches_one_process_on_the_batch(tmp_path):
    model = S.Model(S.Sequential(S.Linear(4, 8), S.Tanh(), S.Linear(8, 3)), S.CrossEntropyLoss(), name="ddp")
    S.derive_network(model).write(tmp_path, ("torch",))
    path, worker = tmp_path / "ddp_torch.py", tmp_path / "worker.py"
    worker.write_text(WORKER)
    single, shared = tmp_path / "single.pt", tmp_path / "ddp.pt"
    subprocess.run([sys.executable, str(worker), str(path), "0", "1", "0", str(single)], check=True, timeout=60)
    port = str(free_port())
    workers = [subprocess.Popen([sys.executable, str(worker), str(path), str(rank), "2", port, str(shared)])
               for rank in (0, 1)]
    try:
        assert [w.wait(timeout=60) for w in workers] == [0, 0]
    finally:
        for w in workers:
            w.kill()
    one, two = torch.load(single), torch.load(shared)
    assert list(one) == list(two) == ["0.weight", "0.bias", "2.weight", "2.bias"]
    spec = importlib.util.spec_from_file_location("ddp_generated", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    start = module.init_params(0)
    for key in one:
        assert (one[key] - two[key]).abs().max().item() <= 1e-12 * one[key].abs().max().item(), key
        assert (one[key] - start[key]).abs().max().item() > 1e-3, f"{key} did not move: nothing was trained"
