"""Training throughput through `mlops_ci.training` against a plain PyTorch loop, and MFU.

The same GPT-style model (GPT-2 small: 12 layers, 12 heads, d=768, seq 1024, vocab 50257, about
124M parameters; bf16 autocast and torch.compile on CUDA), the same data and the same number of
steps go through both loops in one process, alternating, best of ``--rounds``. The runtime loop
uses setup(), the sampler, autocast(), a Checkpointer whose interval is longer than the run (one
save is timed separately) and log_metrics (a no-op without MLflow). Prints tokens/s for both, their
ratio (goal >= 0.97), and MFU = 6 * params * tokens/s / the dense matmul rate measured in the same
run (bf16 8192^3 on CUDA; attention FLOPs are not counted, so MFU is a lower bound).

Without CUDA it runs a tiny model (2 layers, d=64, seq 64, vocab 512, fp32, no compile) so the
script stays runnable on any machine; those figures say nothing about a GPU.
Run (one process): .venv/bin/python bench/train_gpu.py [--steps N] [--rounds R] [--batch B]
"""

from __future__ import annotations

import argparse
import math
import sys
import tempfile
import time
from contextlib import nullcontext
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


@dataclass(frozen=True)
class Size:
    name: str
    layers: int
    heads: int
    d: int
    seq: int
    vocab: int
    batch: int
    steps: int
    warmup: int


GPT2_SMALL = Size("gpt2-small", layers=12, heads=12, d=768, seq=1024, vocab=50257, batch=16, steps=40, warmup=8)
TINY = Size("tiny", layers=2, heads=2, d=64, seq=64, vocab=512, batch=4, steps=30, warmup=3)


def build_model(size: Size):
    import torch
    from torch import nn
    from torch.nn import functional as F

    class Block(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.ln1, self.ln2 = nn.LayerNorm(size.d), nn.LayerNorm(size.d)
            self.qkv, self.proj = nn.Linear(size.d, 3 * size.d), nn.Linear(size.d, size.d)
            self.fc, self.out = nn.Linear(size.d, 4 * size.d), nn.Linear(4 * size.d, size.d)

        def forward(self, x):
            b, t, c = x.shape
            q, k, v = (z.view(b, t, size.heads, c // size.heads).transpose(1, 2)
                       for z in self.qkv(self.ln1(x)).split(c, dim=2))
            y = F.scaled_dot_product_attention(q, k, v, is_causal=True)
            x = x + self.proj(y.transpose(1, 2).reshape(b, t, c))
            return x + self.out(F.gelu(self.fc(self.ln2(x)), approximate="tanh"))

    class GPT(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.wte, self.wpe = nn.Embedding(size.vocab, size.d), nn.Embedding(size.seq, size.d)
            self.blocks = nn.ModuleList(Block() for _ in range(size.layers))
            self.ln_f = nn.LayerNorm(size.d)
            self.head = nn.Linear(size.d, size.vocab, bias=False)
            self.head.weight = self.wte.weight  # tied, as in GPT-2

        def forward(self, idx, targets):
            x = self.wte(idx) + self.wpe(torch.arange(idx.shape[1], device=idx.device))
            for block in self.blocks:
                x = block(x)
            logits = self.head(self.ln_f(x))
            return F.cross_entropy(logits.float().view(-1, logits.shape[-1]), targets.view(-1))

    return GPT()


def dataset(size: Size, samples: int):
    import torch
    from torch.utils.data import TensorDataset

    g = torch.Generator().manual_seed(0)
    tokens = torch.randint(0, size.vocab, (samples, size.seq + 1), generator=g)
    return TensorDataset(tokens[:, :-1], tokens[:, 1:])


def make(size: Size, device, cuda: bool):
    import torch

    torch.manual_seed(0)
    model = build_model(size).to(device)
    opt = torch.optim.AdamW(model.parameters(), lr=6e-4, weight_decay=0.1, **({"fused": True} if cuda else {}))
    compiled = torch.compile(model) if cuda else model
    return model, compiled, opt


def sync(cuda: bool) -> None:
    if cuda:
        import torch

        torch.cuda.synchronize()


def plain_loop(size: Size, data, device, cuda: bool) -> float:
    """The baseline: what a user writes without the runtime. Returns seconds for size.steps steps."""
    import torch
    from torch.utils.data import DataLoader

    torch.manual_seed(0)
    _, model, opt = make(size, device, cuda)
    loader = DataLoader(data, batch_size=size.batch, shuffle=True, drop_last=True, pin_memory=cuda)
    amp = torch.autocast("cuda", dtype=torch.bfloat16) if cuda else nullcontext()
    start, step = 0.0, 0
    while step < size.warmup + size.steps:
        for x, y in loader:
            if step == size.warmup:
                sync(cuda)
                start = time.perf_counter()
            x, y = x.to(device, non_blocking=True), y.to(device, non_blocking=True)
            with amp:
                loss = model(x, y)
            loss.backward()
            opt.step()
            opt.zero_grad(set_to_none=True)
            step += 1
            if step == size.warmup + size.steps:
                break
    sync(cuda)
    return time.perf_counter() - start


def runtime_loop(size: Size, data, dist, ckpt_dir: str, *, save: bool) -> tuple[float, float]:
    """The same loop through mlops_ci.training. Returns (seconds for size.steps steps, seconds of one
    save after them, NaN unless ``save``)."""
    from torch.utils.data import DataLoader

    from mlops_ci import training

    training.seed_everything(0)
    cuda = dist.device.type == "cuda"
    net, model, opt = make(size, dist.device, cuda)
    if dist.distributed:
        from torch.nn.parallel import DistributedDataParallel as DDP

        model = DDP(model)
    sampler = dist.sampler(data, seed=0)
    loader = DataLoader(data, batch_size=size.batch, sampler=sampler, shuffle=sampler is None, drop_last=True,
                        pin_memory=cuda)
    ckpt = training.Checkpointer(dist, ckpt_dir, every_steps=10 ** 9)
    step = ckpt.load_latest(net, opt)
    start, epoch = 0.0, 0
    while step < size.warmup + size.steps:
        if sampler is not None:
            sampler.set_epoch(epoch)
        for x, y in loader:
            if step == size.warmup:
                sync(cuda)
                start = time.perf_counter()
            x, y = x.to(dist.device, non_blocking=True), y.to(dist.device, non_blocking=True)
            with training.autocast(dist):
                loss = model(x, y)
            loss.backward()
            opt.step()
            opt.zero_grad(set_to_none=True)
            step += 1
            ckpt.maybe_save(step, net, opt, epoch=epoch)
            dist.log_metrics({"loss": loss}, step=step)  # no MLflow here: nothing is read from the GPU
            if step == size.warmup + size.steps:
                break
        epoch += 1
    sync(cuda)
    elapsed = time.perf_counter() - start
    if not save:
        return elapsed, math.nan
    t0 = time.perf_counter()
    ckpt.save(step, net, opt, epoch=epoch)
    return elapsed, time.perf_counter() - t0


def matmul_rate(cuda: bool) -> tuple[float, str]:
    """Dense matmul FLOP/s on this device: bf16 8192^3 on CUDA, fp32 1024^3 on CPU."""
    import torch

    n, dtype, iters = (8192, torch.bfloat16, 20) if cuda else (1024, torch.float32, 10)
    device = "cuda" if cuda else "cpu"
    a = torch.randn(n, n, device=device, dtype=dtype)
    b = torch.randn(n, n, device=device, dtype=dtype)
    for _ in range(3):
        a @ b
    sync(cuda)
    best = math.inf
    for _ in range(3):
        start = time.perf_counter()
        for _ in range(iters):
            a @ b
        sync(cuda)
        best = min(best, time.perf_counter() - start)
    return 2 * n ** 3 * iters / best, f"{str(dtype).removeprefix('torch.')} {n}x{n} matmul"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, help="timed steps per loop")
    parser.add_argument("--batch", type=int, help="sequences per step")
    parser.add_argument("--rounds", type=int, default=3, help="alternating rounds; the best of each loop counts")
    args = parser.parse_args(argv)

    import torch

    from mlops_ci import training

    dist = training.setup(seed=0)  # one process: the plain loop has no process group to compare with
    cuda = dist.device.type == "cuda"
    size = GPT2_SMALL if cuda else TINY
    size = Size(**{**size.__dict__, **{k: v for k, v in (("steps", args.steps), ("batch", args.batch)) if v}})
    device = dist.device
    params = sum(p.numel() for p in build_model(size).parameters())
    data = dataset(size, samples=size.batch * (size.warmup + size.steps))
    tokens = size.batch * size.seq * size.steps
    where = torch.cuda.get_device_name(0) if cuda else "cpu (no CUDA)"
    precision = "bf16 autocast, torch.compile" if cuda else "fp32, eager"
    print(f"device: {where}; size: {size.name} ({size.layers} layers, {size.heads} heads, d={size.d}, "
          f"seq {size.seq}, vocab {size.vocab}; {params / 1e6:.1f}M params); {precision}; "
          f"batch {size.batch} x {size.steps} timed steps (+{size.warmup} warm-up), best of {args.rounds}",
          flush=True)

    best = {"plain": math.inf, "runtime": math.inf}
    save_s = math.nan
    with tempfile.TemporaryDirectory() as tmp:
        for r in range(args.rounds):
            best["plain"] = min(best["plain"], plain_loop(size, data, device, cuda))
            elapsed, saved = runtime_loop(size, data, dist, str(Path(tmp) / f"round{r}"), save=r == args.rounds - 1)
            save_s = saved if not math.isnan(saved) else save_s
            best["runtime"] = min(best["runtime"], elapsed)
            if cuda:
                torch.cuda.empty_cache()
    rate, what = matmul_rate(cuda)

    print(f"{'loop':<10} {'tokens/s':>12} {'ms/step':>9} {'MFU':>7}")
    tps = {}
    for name, seconds in best.items():
        tps[name] = tokens / seconds
        print(f"{name:<10} {tps[name]:>12,.0f} {1000 * seconds / size.steps:>9.1f} "
              f"{6 * params * tps[name] / rate:>7.1%}")
    ratio = tps["runtime"] / tps["plain"]
    print(f"runtime / plain: {ratio:.3f} (goal >= 0.97){'' if ratio >= 0.97 else '  BELOW GOAL'}")
    print(f"peak matmul: {rate / 1e12:.2f} TFLOP/s ({what}); MFU = 6 * params * tokens/s / that")
    print(f"one checkpoint save (model + AdamW state, not in the timed steps): {save_s:.2f} s")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
