#!/usr/bin/env python3
"""PyTorch side of `mixt bench`: the same work, timed on the same GPU in the same run.

Reads a JSON list of cases on stdin: {id, op, params, inputs?, outputs?}. For each case it times
the PyTorch implementation (CUDA events, warm-up runs, median of timed runs) and, when `inputs`
names a safetensors file (written by mixt with the case's inputs), runs the op once on those
inputs and writes its outputs to `outputs` for mixt to compare (--check). Prints one JSON object
{id: {ms, best, variants, error?, outputs?}} as its last line.

Ops: matmul (cuBLAS); grouped (the MoT paper's per-modality loop with boolean masks, and
torch._grouped_mm where PyTorch has it); attention (SDPA with every backend it has: flash,
cuDNN, efficient); rmsnorm (per-modality loop); routing (stable sort + bincount); ce (logits +
F.cross_entropy); adamw (torch.optim.AdamW fused); block (a MoT block, eager and torch.compile);
step (a MoT transformer training step).
"""
import argparse
import json
import math
import struct
import sys

import torch
import torch.nn.functional as F

DEV = "cuda"
BF16 = torch.bfloat16


# ---- safetensors, read and written here (the format: u64 header length, JSON, raw data) ----
def read_safetensors(path):
    with open(path, "rb") as f:
        buf = f.read()
    n = struct.unpack("<Q", buf[:8])[0]
    header = json.loads(buf[8 : 8 + n])
    out = {}
    dt = {"F32": torch.float32, "F64": torch.float64, "I32": torch.int32, "BF16": torch.bfloat16}
    for name, e in header.items():
        if name == "__metadata__":
            continue
        a, b = e["data_offsets"]
        raw = bytearray(buf[8 + n + a : 8 + n + b])
        t = torch.frombuffer(raw, dtype=dt[e["dtype"]]).reshape(e["shape"]) if b > a else torch.empty(e["shape"], dtype=dt[e["dtype"]])
        out[name] = t.clone()
    return out


def write_safetensors(path, tensors):
    header, blobs, at = {}, [], 0
    for name, t in tensors.items():
        t = t.detach().to("cpu", torch.float32).contiguous()
        raw = t.numpy().tobytes()
        header[name] = {"dtype": "F32", "shape": list(t.shape), "data_offsets": [at, at + len(raw)]}
        blobs.append(raw)
        at += len(raw)
    h = json.dumps(header).encode()
    h += b" " * ((8 - len(h) % 8) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(h)))
        f.write(h)
        for b in blobs:
            f.write(b)


# ---- timing ----
def time_fn(fn, warmup, iters):
    for _ in range(warmup):
        fn()
    torch.cuda.synchronize()
    times = []
    for _ in range(iters):
        a = torch.cuda.Event(enable_timing=True)
        b = torch.cuda.Event(enable_timing=True)
        a.record()
        fn()
        b.record()
        times.append((a, b))
    torch.cuda.synchronize()
    ms = sorted(a.elapsed_time(b) for a, b in times)
    return ms[len(ms) // 2]


def rand(*shape, std=1.0, dtype=BF16):
    return (torch.randn(*shape, device=DEV, dtype=torch.float32) * std).to(dtype)


def ids_from_counts(counts):
    return torch.cat([torch.full((c,), g, device=DEV, dtype=torch.long) for g, c in enumerate(counts)])


# ---- ops: each returns (variants: {name: fn}, check(inputs) -> outputs or None) ----
def op_matmul(p, inp):
    a, b = rand(p["m"], p["k"]), rand(p["k"], p["n"])
    variants = {"cuBLAS": lambda: torch.matmul(a, b)}
    check = None
    if inp is not None:
        check = lambda: {"c": torch.matmul(inp["a"].to(DEV, BF16), inp["b"].to(DEV, BF16))}
    return variants, check


def grouped_loop(kind, x, w, dy, ids, G):
    """The MoT reference: per group, boolean-mask gather, matmul, scatter."""
    if kind == "fwd":
        y = torch.empty(x.shape[0], w.shape[1], device=DEV, dtype=x.dtype)
        for g in range(G):
            m = ids == g
            y[m] = x[m] @ w[g].t()
        return y
    if kind == "dx":
        dx = torch.empty(dy.shape[0], w.shape[2], device=DEV, dtype=dy.dtype)
        for g in range(G):
            m = ids == g
            dx[m] = dy[m] @ w[g]
        return dx
    dw = torch.empty_like(w)
    for g in range(G):
        m = ids == g
        dw[g] = dy[m].t() @ x[m]
    return dw


def op_grouped(p, inp):
    counts, K, N, kind = p["counts"], p["k"], p["n"], p["kind"]
    G, T = len(counts), sum(counts)
    ids = ids_from_counts(counts)
    x, w, dy = rand(T, K), rand(G, N, K, std=0.05), rand(T, N)
    variants = {"per-group loop": lambda: grouped_loop(kind, x, w, dy, ids, G)}
    offs = torch.tensor(counts, device=DEV, dtype=torch.int32).cumsum(0).to(torch.int32)
    if hasattr(torch, "_grouped_mm") and kind == "fwd" and all(c % 16 == 0 for c in counts):
        wt = w.transpose(-2, -1)
        variants["torch._grouped_mm"] = lambda: torch._grouped_mm(x, wt, offs=offs)
    check = None
    if inp is not None:
        X, W, DY = (inp[k].to(DEV, BF16) for k in ("x", "w", "dy"))
        check = lambda: {"out": grouped_loop(kind, X, W, DY, ids, G)}
    return variants, check


def attention_mask(p, T):
    """Dense bool mask [T, T] (True = attend) of the case's document/span layout."""
    i = torch.arange(T, device=DEV)
    doc = torch.tensor(p["doc"], device=DEV) if p.get("doc") is not None else (i // p["seq"])
    m = doc[:, None] == doc[None, :]
    if p["kind"] != "full":
        causal = i[None, :] <= i[:, None]
        if p.get("span") is not None:
            s = torch.tensor(p["span"], device=DEV)
            causal = causal | ((s[:, None] >= 0) & (s[:, None] == s[None, :]))
        m = m & causal
    return m


def op_attention(p, inp):
    from torch.nn.attention import SDPBackend, sdpa_kernel

    B, S, H, D = p["seqs"], p["seq"], p["heads"], p["dim"]
    T = B * S
    simple = p["kind"] in ("causal", "full")
    q, k, v = (rand(B, H, S, D) for _ in range(3))
    do = rand(B, H, S, D)
    mask = None if simple else attention_mask(p, T)[None, None]
    if mask is not None:  # packed layouts: one sequence of T tokens with a dense mask
        q, k, v, do = (t.transpose(1, 2).reshape(1, T, H, D).transpose(1, 2).contiguous() for t in (q, k, v, do))
    is_causal = p["kind"] == "causal"
    backends = {"flash": SDPBackend.FLASH_ATTENTION, "cuDNN": SDPBackend.CUDNN_ATTENTION, "efficient": SDPBackend.EFFICIENT_ATTENTION}
    variants = {}
    for name, be in backends.items():
        def run(be=be):
            with sdpa_kernel([be]):
                if p["dir"] == "fwd":
                    with torch.no_grad():
                        return F.scaled_dot_product_attention(q, k, v, attn_mask=mask, is_causal=is_causal and mask is None)
                qq, kk, vv = (t.detach().requires_grad_() for t in (q, k, v))
                o = F.scaled_dot_product_attention(qq, kk, vv, attn_mask=mask, is_causal=is_causal and mask is None)
                o.backward(do)
                return o
        try:  # a backend that refuses this shape or mask is left out
            run()
            torch.cuda.synchronize()
            if p["dir"] == "bwd":
                # time the backward alone: forward outside the timed region
                qq, kk, vv = (t.detach().requires_grad_() for t in (q, k, v))
                with sdpa_kernel([be]):
                    o = F.scaled_dot_product_attention(qq, kk, vv, attn_mask=mask, is_causal=is_causal and mask is None)
                variants[name] = (lambda o=o: torch.autograd.grad(o, (qq, kk, vv), do, retain_graph=True))
            else:
                variants[name] = run
        except Exception:
            pass
    check = None
    if inp is not None:
        def check():
            Q, K, V, DO = (inp[n].to(DEV, torch.float32) for n in ("q", "k", "v", "dout"))  # [T, H, D] packed
            hk = K.shape[1]
            K = K.repeat_interleave(H // hk, dim=1)
            V = V.repeat_interleave(H // hk, dim=1)
            m = attention_mask(p, T)
            Qt, Kt, Vt = (t.transpose(0, 1).detach().requires_grad_() for t in (Q, K, V))
            o = F.scaled_dot_product_attention(Qt, Kt, Vt, attn_mask=m)
            if p["dir"] == "fwd":
                return {"out": o.transpose(0, 1)}
            o.backward(DO.transpose(0, 1))
            dk = Kt.grad.transpose(0, 1).reshape(T, hk, H // hk, D).sum(2)
            dv = Vt.grad.transpose(0, 1).reshape(T, hk, H // hk, D).sum(2)
            return {"dq": Qt.grad.transpose(0, 1), "dk": dk, "dv": dv}
    return variants, check


def rms_loop(x, w, ids, G, dy):
    x = x.detach().requires_grad_()
    wg = w.detach().requires_grad_()
    y = torch.empty_like(x)
    for g in range(G):
        m = ids == g
        y[m] = F.rms_norm(x[m], (x.shape[1],), wg[g], eps=1e-6)
    y.backward(dy)
    return y, x.grad, wg.grad


def op_rmsnorm(p, inp):
    counts, d = p["counts"], p["d"]
    T, G = sum(counts), len(counts)
    ids = ids_from_counts(counts)
    x, dy, w = rand(T, d), rand(T, d), rand(G, d)
    variants = {"per-modality loop": lambda: rms_loop(x, w, ids, G, dy)}
    check = None
    if inp is not None:
        def check():
            y, dx, dw = rms_loop(inp["x"].to(DEV, torch.float32), inp["w"].to(DEV, torch.float32), ids, G, inp["dy"].to(DEV, torch.float32))
            return {"y": y, "dx": dx, "dweight": dw}
    return variants, check


def op_routing(p, inp):
    rows, groups, d = p["rows"], p["groups"], p["d"]
    ids = torch.randint(0, groups, (rows,), device=DEV)
    x = rand(rows, d)

    def plan():
        order = torch.sort(ids, stable=True).indices
        counts = torch.bincount(ids, minlength=groups)
        offsets = torch.cumsum(counts, 0)
        return x[order], offsets

    return {"sort + bincount + gather": plan}, None


def op_topk(p, inp):
    s = torch.randn(p["rows"], p["seq"], device=DEV)
    return {"torch.topk + sort": lambda: torch.topk(s, p["k"], dim=1).indices.sort(dim=1).values}, None


def op_router(p, inp):
    logits = torch.randn(p["tokens"], p["experts"], device=DEV)

    def run():
        probs = torch.softmax(logits, dim=-1)
        g, e = torch.topk(probs, p["k"], dim=-1)
        return g / g.sum(-1, keepdim=True), e

    return {"softmax + topk": run}, None


def op_ce(p, inp):
    n, d, V = p["n"], p["d"], p["v"]
    h, w = rand(n, d), rand(V, d, std=0.02)
    t = (torch.arange(n, device=DEV) * 7919) % V

    def run(h=h, w=w):
        hh, ww = h.detach().requires_grad_(), w.detach().requires_grad_()
        loss = F.cross_entropy((hh @ ww.t()).float(), t, reduction="none")
        loss.mean().backward()
        return loss, hh.grad, ww.grad

    check = None
    if inp is not None:
        def check():
            loss, dh, dw = run(inp["h"].to(DEV, torch.float32), inp["w"].to(DEV, torch.float32))
            return {"loss": loss, "dh": dh, "dw": dw}
    return {"matmul + F.cross_entropy": run}, check


def op_adamw(p, inp):
    param = torch.nn.Parameter(torch.randn(p["numel"], device=DEV))
    param.grad = torch.randn(p["numel"], device=DEV) * 0.01
    opt = torch.optim.AdamW([param], lr=1e-3, betas=(0.9, 0.95), weight_decay=0.1, fused=True)
    return {"AdamW(fused=True)": opt.step}, None


class MoTBlock(torch.nn.Module):
    """The MoT block as PyTorch users write it: per-modality loops of boolean-mask gathers."""

    def __init__(self, d, heads, ffn, M):
        super().__init__()
        self.M, self.h, self.dh = M, heads, d // heads
        mk = lambda i, o: torch.nn.ParameterList([torch.nn.Parameter(torch.randn(o, i, device=DEV, dtype=BF16) * 0.02) for _ in range(M)])
        self.wq, self.wk, self.wv, self.wo = mk(d, d), mk(d, d), mk(d, d), mk(d, d)
        self.wgu, self.wdown = mk(d, 2 * ffn), mk(ffn, d)
        self.n1 = torch.nn.ParameterList([torch.nn.Parameter(torch.ones(d, device=DEV, dtype=BF16)) for _ in range(M)])
        self.n2 = torch.nn.ParameterList([torch.nn.Parameter(torch.ones(d, device=DEV, dtype=BF16)) for _ in range(M)])

    def per_modality(self, x, ids, fn, out_dim):
        y = torch.empty(x.shape[0], out_dim, device=DEV, dtype=x.dtype)
        for m in range(self.M):
            sel = ids == m
            y[sel] = fn(m, x[sel])
        return y

    def forward(self, x, ids):
        T, d = x.shape
        xn = self.per_modality(x, ids, lambda m, t: F.rms_norm(t, (d,), self.n1[m]), d)
        q = self.per_modality(xn, ids, lambda m, t: t @ self.wq[m].t(), d)
        k = self.per_modality(xn, ids, lambda m, t: t @ self.wk[m].t(), d)
        v = self.per_modality(xn, ids, lambda m, t: t @ self.wv[m].t(), d)
        q, k, v = (t.view(1, T, self.h, self.dh).transpose(1, 2) for t in (q, k, v))
        a = F.scaled_dot_product_attention(q, k, v, is_causal=True).transpose(1, 2).reshape(T, d)
        h = x + self.per_modality(a, ids, lambda m, t: t @ self.wo[m].t(), d)
        hn = self.per_modality(h, ids, lambda m, t: F.rms_norm(t, (d,), self.n2[m]), d)

        def ffn(m, t):
            g, u = (t @ self.wgu[m].t()).chunk(2, dim=-1)
            return (F.silu(g) * u) @ self.wdown[m].t()

        return h + self.per_modality(hn, ids, ffn, d)


def op_block(p, inp):
    T, d, heads, ffn, counts = p["T"], p["d"], p["heads"], p["ffn"], p["counts"]
    M = len(counts)
    block = MoTBlock(d, heads, ffn, M)
    ids = ids_from_counts(counts)[torch.randperm(T, device=DEV)]
    x, dy = rand(T, d), rand(T, d, std=0.01)

    def step(fn):
        def run():
            xx = x.detach().requires_grad_()
            fn(xx, ids).backward(dy)
        return run

    variants = {"eager": step(block)}
    try:
        compiled = torch.compile(block)
        step(compiled)()
        variants["torch.compile"] = step(compiled)
    except Exception:
        pass
    return variants, None


class MoTModel(torch.nn.Module):
    def __init__(self, p):
        super().__init__()
        self.emb = torch.nn.Parameter(torch.randn(p["vocab"], p["d"], device=DEV, dtype=BF16) * 0.02)
        self.blocks = torch.nn.ModuleList([MoTBlock(p["d"], p["heads"], p["ffn"], p["modalities"]) for _ in range(p["layers"])])
        self.head = torch.nn.Parameter(torch.randn(p["vocab"], p["d"], device=DEV, dtype=BF16) * 0.02)

    def forward(self, tokens, ids, targets):
        x = self.emb[tokens]
        for b in self.blocks:
            x = b(x, ids)
        return F.cross_entropy((x @ self.head.t()).float(), targets)


def op_step(p, inp):
    model = MoTModel(p)
    opt = torch.optim.AdamW(model.parameters(), lr=1e-4, fused=True)
    T = p["batch"] * p["seq"]
    tokens = torch.randint(0, p["vocab"], (T,), device=DEV)
    targets = torch.randint(0, p["vocab"], (T,), device=DEV)
    ids = torch.randint(0, p["modalities"], (T,), device=DEV)

    def step():
        opt.zero_grad(set_to_none=True)
        model(tokens, ids, targets).backward()
        opt.step()

    return {"eager": step}, None


OPS = {"matmul": op_matmul, "grouped": op_grouped, "attention": op_attention, "rmsnorm": op_rmsnorm, "routing": op_routing,
       "topk": op_topk, "router": op_router,
       "ce": op_ce, "adamw": op_adamw, "block": op_block, "step": op_step}


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--warmup", type=int, default=5)
    ap.add_argument("--iters", type=int, default=20)
    args = ap.parse_args()
    cases = json.load(sys.stdin)
    results = {}
    torch.manual_seed(0)
    for c in cases:
        r = {}
        try:
            inp = read_safetensors(c["inputs"]) if c.get("inputs") else None
            variants, check = OPS[c["op"]](c["params"], inp)
            times = {}
            for name, fn in variants.items():
                try:
                    times[name] = time_fn(fn, args.warmup, args.iters)
                except Exception as e:  # one failing variant does not hide the others
                    times[name] = float("nan")
                    r.setdefault("notes", []).append(f"{name}: {str(e).splitlines()[0][:120]}")
            good = {k: v for k, v in times.items() if not math.isnan(v)}
            if good:
                best = min(good, key=good.get)
                r.update(ms=good[best], best=best, variants=good)
            if check is not None and c.get("outputs"):
                write_safetensors(c["outputs"], check())
                r["outputs"] = c["outputs"]
        except Exception as e:
            r["error"] = str(e).splitlines()[0][:200]
        results[str(c["id"])] = r
        torch.cuda.empty_cache()
        print(f"torch_bench: {c.get('suite')} {c.get('name')}: {r.get('ms', r.get('error'))}", file=sys.stderr)
    print(json.dumps(results))


if __name__ == "__main__":
    main()
