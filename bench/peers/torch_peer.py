"""The PyTorch peer of `npm run bench` (bench/peers/torch.ts starts it; it needs only python3 with torch).

W1 (nn.LSTM bidirectional -> nn.Linear -> per-window MSE) and W2 (nn.Embedding -> encoder nn.LSTM -> decoder
nn.LSTM from the encoder state, teacher forced -> nn.Linear -> softmax cross-entropy), fp32 on the CPU, trained
with torch.optim.Adam at the benchmark's settings (lr 1e-3, betas 0.9/0.999, eps 1e-7). The parameters and the
batch are the harness' seeded ones (bench/workloads.ts), written as raw little-endian files, so the harness
checks this peer's outputs and gradients against native like any other.

Protocol: one JSON object per line on stdin, one JSON answer per line on stdout.
  {"op": "init", "threads": N}                               -> {"torch": version, "threads": N}
  {"op": "load", "model": "w1"|"l1"|"w2", "shape": {...}, "dir": D}
       arrays D/<model>.<name>.f32 (W1/W2 parameter names, Keras layouts) and the batch
       (W1: x.f32 [B,T,I], target.f32 [B,out]; W2: tokens.i32 and decoder.i32 [B,T])
  {"op": "check", "case": C, "dir": D}  C in w1-forward l1 w1-train w2-encode w2-train
       -> {"output": file} (forward cases) or {"loss": x, "grads": [[name, file], ...]} (Keras layouts; no update)
  {"op": "time", "case": C, "minSamples": n, "maxTime": s}
       -> {"samples": [seconds per call, one per cycle], "callsPerSample": k, "calls": total}
       a training case times whole steps (forward, backward, Adam update)
Errors come back as {"error": text}.
"""
import json
import math
import os
import sys
import time

import torch
import torch.nn as nn
import torch.nn.functional as F

# a cycle lasts at least this long (seconds), so a sample of a fast call is the mean of many calls, as in
# benchmark.js' cycles on the TypeScript side
MIN_CYCLE = 0.05
ADAM = dict(lr=1e-3, betas=(0.9, 0.999), eps=1e-7)
W1_NAMES = ['fw.kernel', 'fw.recurrentKernel', 'fw.bias', 'bw.kernel', 'bw.recurrentKernel', 'bw.bias',
            'dense.kernel', 'dense.bias']
W2_NAMES = ['embedding', 'enc.kernel', 'enc.recurrentKernel', 'enc.bias', 'dec.kernel', 'dec.recurrentKernel',
            'dec.bias', 'dense.kernel', 'dense.bias']


def read(path, dtype, shape):
    with open(path, 'rb') as f:
        data = bytearray(f.read())
    return torch.frombuffer(data, dtype=dtype).reshape(shape).clone()


def write(path, t):
    with open(path, 'wb') as f:
        f.write(t.detach().to(torch.float32).contiguous().numpy().tobytes())


def set_lstm(lstm, suffix, kernel, recurrent, bias):
    # torch gates are i, f, g, o like the Keras kernels; torch keeps [4H, I] where Keras keeps [I, 4H]; the
    # Keras bias is torch's input bias, the recurrent bias stays 0 and is not trained (Keras has one bias)
    with torch.no_grad():
        getattr(lstm, 'weight_ih_l0' + suffix).copy_(kernel.t())
        getattr(lstm, 'weight_hh_l0' + suffix).copy_(recurrent.t())
        getattr(lstm, 'bias_ih_l0' + suffix).copy_(bias)
        b_hh = getattr(lstm, 'bias_hh_l0' + suffix)
        b_hh.zero_()
        b_hh.requires_grad_(False)


class W1(nn.Module):
    def __init__(s, shape, arrays):
        super().__init__()
        I, H, N = shape['input'], shape['hidden'], shape['out']
        s.lstm = nn.LSTM(I, H, batch_first=True, bidirectional=True)
        s.dense = nn.Linear(2 * H, N)
        a = arrays
        set_lstm(s.lstm, '', a['fw.kernel'], a['fw.recurrentKernel'], a['fw.bias'])
        set_lstm(s.lstm, '_reverse', a['bw.kernel'], a['bw.recurrentKernel'], a['bw.bias'])
        with torch.no_grad():
            s.dense.weight.copy_(a['dense.kernel'].t())
            s.dense.bias.copy_(a['dense.bias'])

    def forward(s, x, target):
        _, (h, _) = s.lstm(x)  # h [2, B, H]: each direction's final state
        pred = s.dense(torch.cat([h[0], h[1]], dim=1))
        scores = ((pred - target) ** 2).mean(dim=1)
        return pred, scores

    def keras_grads(s):
        L = s.lstm
        g = [L.weight_ih_l0.grad.t(), L.weight_hh_l0.grad.t(), L.bias_ih_l0.grad,
             L.weight_ih_l0_reverse.grad.t(), L.weight_hh_l0_reverse.grad.t(), L.bias_ih_l0_reverse.grad,
             s.dense.weight.grad.t(), s.dense.bias.grad]
        return list(zip(W1_NAMES, g))


class W2(nn.Module):
    def __init__(s, shape, arrays):
        super().__init__()
        V, E, H = shape['vocab'], shape['embedding'], shape['hidden']
        s.emb = nn.Embedding(V, E)
        s.enc = nn.LSTM(E, H, batch_first=True)
        s.dec = nn.LSTM(E, H, batch_first=True)
        s.dense = nn.Linear(H, V)
        a = arrays
        with torch.no_grad():
            s.emb.weight.copy_(a['embedding'])
            s.dense.weight.copy_(a['dense.kernel'].t())
            s.dense.bias.copy_(a['dense.bias'])
        set_lstm(s.enc, '', a['enc.kernel'], a['enc.recurrentKernel'], a['enc.bias'])
        set_lstm(s.dec, '', a['dec.kernel'], a['dec.recurrentKernel'], a['dec.bias'])

    def encode(s, tokens):
        _, (h, c) = s.enc(s.emb(tokens))
        return h, c

    def loss(s, tokens, decoder):
        h, c = s.encode(tokens)
        y, _ = s.dec(s.emb(decoder), (h, c))
        logits = s.dense(y)
        return F.cross_entropy(logits.reshape(-1, logits.shape[-1]), tokens.reshape(-1))

    def keras_grads(s):
        g = [s.emb.weight.grad, s.enc.weight_ih_l0.grad.t(), s.enc.weight_hh_l0.grad.t(), s.enc.bias_ih_l0.grad,
             s.dec.weight_ih_l0.grad.t(), s.dec.weight_hh_l0.grad.t(), s.dec.bias_ih_l0.grad,
             s.dense.weight.grad.t(), s.dense.bias.grad]
        return list(zip(W2_NAMES, g))


class Peer:
    def __init__(s):
        s.models = {}

    def load(s, msg):
        kind, shape, d = msg['model'], msg['shape'], msg['dir']
        names = W2_NAMES if kind == 'w2' else W1_NAMES
        dims = param_dims(kind, shape)
        arrays = {n: read(os.path.join(d, f'{kind}.{n}.f32'), torch.float32, dims[n]) for n in names}
        if kind == 'w2':
            B, T = shape['batch'], shape['steps']
            m = W2(shape, arrays)
            batch = (read(os.path.join(d, f'{kind}.tokens.i32'), torch.int32, (B, T)).long(),
                     read(os.path.join(d, f'{kind}.decoder.i32'), torch.int32, (B, T)).long())
        else:
            B, T, I, N = shape['batch'], shape['steps'], shape['input'], shape['out']
            m = W1(shape, arrays)
            batch = (read(os.path.join(d, f'{kind}.x.f32'), torch.float32, (B, T, I)),
                     read(os.path.join(d, f'{kind}.target.f32'), torch.float32, (B, N)))
        params = [p for p in m.parameters() if p.requires_grad]
        s.models[kind] = (m, batch, torch.optim.Adam(params, **ADAM))
        return {}

    def fn(s, case):
        """the function a case times"""
        kind = {'w1-forward': 'w1', 'w1-train': 'w1', 'l1': 'l1', 'w2-encode': 'w2', 'w2-train': 'w2'}[case]
        m, batch, opt = s.models[kind]
        if case in ('w1-forward', 'l1'):
            def f():
                with torch.inference_mode():
                    return m(*batch)[0]
        elif case == 'w2-encode':
            def f():
                with torch.inference_mode():
                    return m.encode(batch[0])[0][0]
        else:
            loss_of = (lambda: F.mse_loss(m(*batch)[0], batch[1])) if kind == 'w1' else (lambda: m.loss(*batch))

            def f():
                opt.zero_grad(set_to_none=True)
                loss = loss_of()
                loss.backward()
                opt.step()
                return loss
        return m, batch, f

    def check(s, msg):
        case, d = msg['case'], msg['dir']
        m, batch, f = s.fn(case)
        if case in ('w1-forward', 'l1', 'w2-encode'):
            out = os.path.join(d, f'torch.{case}.out.f32')
            write(out, f())
            return {'output': out}
        m.zero_grad(set_to_none=True)
        loss = F.mse_loss(m(*batch)[0], batch[1]) if case == 'w1-train' else m.loss(*batch)
        loss.backward()
        grads = []
        for name, g in m.keras_grads():
            p = os.path.join(d, f'torch.{case}.{name}.grad.f32')
            write(p, g)
            grads.append([name, p])
        m.zero_grad(set_to_none=True)
        return {'loss': float(loss), 'grads': grads}

    def time(s, msg):
        _, _, f = s.fn(msg['case'])
        t0 = time.perf_counter()
        f()  # warm-up, and the length of one call
        one = max(time.perf_counter() - t0, 1e-7)
        k = max(1, math.ceil(MIN_CYCLE / one))
        samples, calls = [], 1
        end = time.perf_counter() + float(msg['maxTime'])
        while len(samples) < int(msg['minSamples']) or time.perf_counter() < end:
            t0 = time.perf_counter()
            for _ in range(k):
                f()
            samples.append((time.perf_counter() - t0) / k)
            calls += k
        return {'samples': samples, 'callsPerSample': k, 'calls': calls}


def param_dims(kind, s):
    if kind == 'w2':
        V, E, H = s['vocab'], s['embedding'], s['hidden']
        return {'embedding': (V, E), 'enc.kernel': (E, 4 * H), 'enc.recurrentKernel': (H, 4 * H), 'enc.bias': (4 * H,),
                'dec.kernel': (E, 4 * H), 'dec.recurrentKernel': (H, 4 * H), 'dec.bias': (4 * H,),
                'dense.kernel': (H, V), 'dense.bias': (V,)}
    I, H, N = s['input'], s['hidden'], s['out']
    lstm = {'kernel': (I, 4 * H), 'recurrentKernel': (H, 4 * H), 'bias': (4 * H,)}
    dims = {f'{d}.{k}': v for d in ('fw', 'bw') for k, v in lstm.items()}
    dims.update({'dense.kernel': (2 * H, N), 'dense.bias': (N,)})
    return dims


def main():
    peer = Peer()
    for line in sys.stdin:
        if not line.strip():
            continue
        try:
            msg = json.loads(line)
            op = msg['op']
            if op == 'init':
                torch.set_num_threads(int(msg['threads']))
                torch.manual_seed(0)
                ans = {'torch': torch.__version__, 'threads': torch.get_num_threads()}
            elif op == 'load':
                ans = peer.load(msg)
            elif op == 'check':
                ans = peer.check(msg)
            elif op == 'time':
                ans = peer.time(msg)
            elif op == 'quit':
                break
            else:
                ans = {'error': f'unknown op {op!r}'}
        except Exception as e:  # reported to the harness, which fails this peer with the text
            ans = {'error': f'{type(e).__name__}: {e}'}
        sys.stdout.write(json.dumps(ans) + '\n')
        sys.stdout.flush()


if __name__ == '__main__':
    main()
