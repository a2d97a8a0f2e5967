#!/usr/bin/env python3
"""Reference vectors for webgpu-batchnorm, in float64, independent of the library's own CPU path.

    python3 conformance/generate.py verify [FILE ...]   # recompute every expected value of FILEs
    python3 conformance/generate.py faults [OUT]        # derive faults.json from pytorch_golden.json

`pytorch_golden.json` was made by PyTorch 2.11 in float64 on the CPU (`F.batch_norm` and autograd;
Batch Renorm written in PyTorch with r and d under stop-gradient), from inputs drawn by PyTorch's
RNG and rounded to float32. Its inputs are data; `verify` recomputes every expected value from them
with the NumPy reference below (and with PyTorch where it is installed) and fails on a difference
above 1e-7 of an array's scale (the files carry 9 significant digits). `faults` derives the fault
cases from the golden ones, as faults.json was derived.

Needs NumPy; PyTorch is optional (`verify` cross-checks the batch-norm cases with it when present).
"""
import json
import math
import sys
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
FIELDS = ('y', 'dx', 'dgamma', 'dbeta', 'running_mean', 'running_var', 'running_std', 'r', 'd', 'batch_mean', 'batch_var_biased')


def decode(a):
    return np.array([float(v) for v in a], dtype=np.float64)


def encode(a):
    out = []
    for v in np.asarray(a, dtype=np.float64).ravel():
        if math.isnan(v):
            out.append('NaN')
        elif math.isinf(v):
            out.append('Infinity' if v > 0 else '-Infinity')
        else:
            out.append(float(f'{v:.9g}'))
    return out


def axes(shape):
    """Reduction axes of an NCHW-ordered tensor: everything but C."""
    return (0,) + tuple(range(2, len(shape)))


def per_channel(v, shape):
    """A [C] vector shaped to broadcast against an NCHW tensor of `shape`."""
    return v.reshape((1, shape[1]) + (1,) * (len(shape) - 2))


class Module:
    """PyTorch's BatchNorm semantics (and Ioffe 2017 Batch Renorm), float64, one case's state."""

    def __init__(self, case):
        self.c = case
        C = case['shape'][1]
        affine = case.get('affine', True)
        self.gamma = decode(case['gamma']) if affine else np.ones(C)
        self.beta = decode(case['beta']) if affine else np.zeros(C)
        self.mu = decode(case['running_mean_init'])
        self.renorm = case['op'] == 'batch_renorm'
        self.spread = decode(case['running_std_init'] if self.renorm else case['running_var_init'])
        self.tracked = 0

    def step(self, s):
        c, shape = self.c, self.c['shape']
        x = decode(s['x']).reshape(shape)
        dy = decode(s['dy']).reshape(shape)
        eps, ax = c['eps'], axes(shape)
        M = x.size // shape[1]
        b = lambda v: per_channel(v, shape)
        out = {}
        if s['training']:
            mean = x.mean(axis=ax)
            var = ((x - b(mean)) ** 2).mean(axis=ax)
            sigma_b = np.sqrt(var + eps)
            xhat = (x - b(mean)) / b(sigma_b)
            r, d = np.ones_like(mean), np.zeros_like(mean)
            if self.renorm:
                r = np.clip(sigma_b / self.spread, 1 / c['rmax'], c['rmax'])
                d = np.clip((mean - self.mu) / self.spread, -c['dmax'], c['dmax'])
                out.update(r=r, d=d)
            else:
                out.update(batch_mean=mean, batch_var_biased=var)
            y = b(self.gamma) * (xhat * b(r) + b(d)) + b(self.beta)
            g = dy * b(self.gamma * r)  # gradient w.r.t. xhat; r and d are constants
            dx = (g - b(g.mean(axis=ax)) - xhat * b((g * xhat).mean(axis=ax))) / b(sigma_b)
            dgamma = (dy * (xhat * b(r) + b(d))).sum(axis=ax)
            self.tracked += 1
            f = (1 / self.tracked) if c['momentum'] is None else c['momentum']
            ok = np.isfinite(mean) & np.isfinite(var)  # a non-finite channel keeps its running stats
            stat = sigma_b if self.renorm else var * M / (M - 1)
            self.mu = np.where(ok, (1 - f) * self.mu + f * mean, self.mu)
            self.spread = np.where(ok, (1 - f) * self.spread + f * stat, self.spread)
        else:
            inv = 1 / self.spread if self.renorm else 1 / np.sqrt(self.spread + eps)
            xhat = (x - b(self.mu)) * b(inv)
            y = b(self.gamma) * xhat + b(self.beta)
            dx = dy * b(self.gamma * inv)
            dgamma = (dy * xhat).sum(axis=ax)
        out.update(y=y, dx=dx, dgamma=dgamma, dbeta=dy.sum(axis=ax), running_mean=self.mu.copy())
        out['running_std' if self.renorm else 'running_var'] = self.spread.copy()
        return out

    def snapshot(self):
        return {'running_mean': self.mu.copy(), ('running_std' if self.renorm else 'running_var'): self.spread.copy(), 'tracked': self.tracked}

    def restore(self, snap):
        self.mu = snap['running_mean']
        self.spread = snap.get('running_std', snap.get('running_var'))
        self.tracked = snap['tracked']


def scaled_error(got, want):
    want, got = np.asarray(want, float), np.asarray(got, float).ravel()
    if got.shape != want.shape:
        return math.inf
    fin = np.isfinite(want)
    if not np.array_equal(np.isnan(want), np.isnan(got)) or not np.array_equal(want[~fin & ~np.isnan(want)], got[~fin & ~np.isnan(want)]):
        return math.inf
    scale = max(1.0, float(np.abs(want[fin]).max(initial=0)))
    return float(np.abs(got[fin] - want[fin]).max(initial=0)) / scale


def torch_step(case, state, s):
    """The same step through PyTorch's own F.batch_norm and autograd (batch-norm cases only)."""
    import torch
    import torch.nn.functional as F
    shape, C = case['shape'], case['shape'][1]
    x = torch.tensor(decode(s['x']).reshape(shape), requires_grad=True)
    affine = case.get('affine', True)
    w = torch.tensor(decode(case['gamma']) if affine else np.ones(C), requires_grad=True)
    bias = torch.tensor(decode(case['beta']) if affine else np.zeros(C), requires_grad=True)
    rm, rv = torch.tensor(state['running_mean']), torch.tensor(state['running_var'])
    momentum = case['momentum'] if case['momentum'] is not None else 1 / (state['tracked'] + 1)
    y = F.batch_norm(x, rm, rv, w, bias, training=s['training'], momentum=momentum, eps=case['eps'])
    y.backward(torch.tensor(decode(s['dy']).reshape(shape)))
    return {'y': y.detach().numpy(), 'dx': x.grad.numpy(), 'dgamma': w.grad.numpy(), 'dbeta': bias.grad.numpy(),
            'running_mean': rm.numpy(), 'running_var': rv.numpy()}


def verify(path):
    data = json.loads(Path(path).read_text())
    try:
        import torch  # noqa: F401
        have_torch = True
    except ImportError:
        have_torch = False
    worst, failures = 0.0, 0
    for case in data['cases']:
        if case.get('expect_error'):
            continue
        m = Module(case)
        for i, s in enumerate(case['steps']):
            if s.get('expect_error'):
                continue  # refused: the state must not change, which the next step's values show
            before = m.snapshot()
            got = m.step(s)
            checks = [('numpy', got)]
            if have_torch and not m.renorm and not s.get('skip_outputs'):
                checks.append(('torch', torch_step(case, before, s)))
            for who, values in checks:
                for f in FIELDS:
                    if f not in s or f not in values or (s.get('skip_outputs') and f in ('y', 'dx', 'dgamma', 'dbeta', 'batch_mean', 'batch_var_biased')):
                        continue
                    if not case.get('affine', True) and f in ('dgamma', 'dbeta'):
                        continue
                    e = scaled_error(values[f], decode(s[f]))
                    worst = max(worst, e)
                    if not e <= 1e-7:
                        failures += 1
                        print(f'FAIL {Path(path).name} {case["name"]} step {i} {f}: {who} differs by {e:.2e}')
    print(f'{Path(path).name}: {len(data["cases"])} cases, largest scaled difference {worst:.2e}'
          f'{" (numpy and torch)" if have_torch else " (numpy; torch not installed)"}, {failures} failures')
    return failures == 0


def faults(target):
    """faults.json: cases derived from pytorch_golden.json, as described in README.md."""
    golden = json.loads((HERE / 'pytorch_golden.json').read_text())
    by_name = {c['name']: c for c in golden['cases']}
    base = by_name['bn2d_train_4x8x6x6_3steps_eval']
    cases = []

    # A step with an x one element short in the middle of a run: refused, nothing changes.
    c = json.loads(json.dumps(base))
    c['name'] = 'fault_x_length_midway'
    m = Module(c)
    steps = [dict(c['steps'][0], **{k: encode(v) for k, v in m.step(c['steps'][0]).items() if k in c['steps'][0]})]
    bad = {'training': True, 'x': c['steps'][0]['x'][:-1], 'dy': c['steps'][0]['dy'][:-1], 'expect_error': True}
    bad.update({k: encode(v) for k, v in m.snapshot().items() if k != 'tracked'})
    steps.append(bad)
    for s in c['steps'][1:]:
        steps.append(dict(s, **{k: encode(v) for k, v in m.step(s).items() if k in s}))
    c['steps'] = steps
    cases.append(c)

    # A batch with NaN in every channel between good ones: outputs are not compared, every channel
    # keeps its running statistics, and the run goes on.
    c = json.loads(json.dumps(base))
    c['name'] = 'fault_nonfinite_batch_every_channel'
    m = Module(c)
    shape = c['shape']
    nan_x = decode(c['steps'][0]['x']).reshape(shape)
    nan_x[0, :, 0, 0] = np.nan
    steps = [dict(c['steps'][0], **{k: encode(v) for k, v in m.step(c['steps'][0]).items() if k in c['steps'][0]})]
    nan_step = {'training': True, 'x': encode(nan_x), 'dy': c['steps'][0]['dy'], 'skip_outputs': True}
    out = m.step(nan_step)
    nan_step.update(running_mean=encode(out['running_mean']), running_var=encode(out['running_var']))
    steps.append(nan_step)
    for s in c['steps'][1:]:
        steps.append(dict(s, **{k: encode(v) for k, v in m.step(s).items() if k in s}))
    c['steps'] = steps
    cases.append(c)

    # Refused cases: a negative eps, and one value per channel in training (pytorch#4534).
    c = json.loads(json.dumps(by_name['bn2d_train_2x3x4x5']))
    c.update(name='fault_eps_negative', eps=-1e-05, expect_error='must be refused with a clear, typed error')
    cases.append(c)
    c = json.loads(json.dumps(by_name['bn2d_train_2x3x4x5']))
    c.update(name='fault_single_value_per_channel', shape=[1, 3, 1, 1], expect_error='must be refused with a clear, typed error')
    c['steps'][0].update(x=[0.5, 1.0, -2.0], dy=[1.0, 1.0, 1.0])
    cases.append(c)

    out = {'generator': 'torch 2.11.0+cu130 float64 CPU + derived fault cases (float64, Python)', 'set': 'shared-faults', 'cases': cases}
    Path(target).write_text(json.dumps(out))
    print(f'wrote {target}: {len(cases)} cases')


def main(argv):
    if len(argv) >= 1 and argv[0] == 'verify':
        files = argv[1:] or [str(HERE / 'pytorch_golden.json'), str(HERE / 'faults.json')]
        sys.exit(0 if all([verify(f) for f in files]) else 1)
    if len(argv) in (1, 2) and argv[0] == 'faults':
        return faults(argv[1] if len(argv) == 2 else HERE / 'faults.json')
    print(__doc__)
    sys.exit(2)


if __name__ == '__main__':
    main(sys.argv[1:])
