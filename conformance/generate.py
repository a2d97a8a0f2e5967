#!/usr/bin/env python3
"""Reference vectors for webgpu-batchnorm, in float64, independent of the library's own CPU path.

    python3 conformance/generate.py verify [FILE ...]   # recompute every expected value of FILEs
    python3 conformance/generate.py faults [OUT]        # derive faults.json from pytorch_golden.json
    python3 conformance/generate.py extensions [OUT]    # make extensions.json (epilogues, ghost, per-activation, shards)

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
EXTENSIONS = ('epilogue', 'virtual_batch_size', 'per_activation', 'shards')
FIELDS = ('y', 'dx', 'dz', 'dgamma', 'dbeta', 'running_mean', 'running_var', 'running_std', 'r', 'd', 'batch_mean', 'batch_var_biased')


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
    """PyTorch's BatchNorm semantics (and Ioffe 2017 Batch Renorm), float64, one case's state; with
    the extension fields: fused relu / add+relu epilogues, ghost batches, per-activation statistics
    (shards do not change the expected values: they are the full batch's)."""

    def __init__(self, case):
        self.c = case
        self.per_act = case.get('per_activation', False)
        shape = case['shape']
        F = int(np.prod(shape[1:])) if self.per_act else shape[1]
        affine = case.get('affine', True)
        self.gamma = decode(case['gamma']) if affine else np.ones(F)
        self.beta = decode(case['beta']) if affine else np.zeros(F)
        self.mu = decode(case['running_mean_init'])
        self.renorm = case['op'] == 'batch_renorm'
        self.spread = decode(case['running_std_init'] if self.renorm else case['running_var_init'])
        self.tracked = 0

    def view(self, a, n):
        """`a` (n samples) as the statistics see it, and the axes they reduce: [n, F] over axis 0
        per activation, the NCHW tensor over all but C per channel."""
        shape = [n] + list(self.c['shape'][1:])
        if self.per_act:
            return a.reshape(n, -1), (0,)
        return a.reshape(shape), axes(shape)

    def bcast(self, v, a):
        return v.reshape((1, -1)) if self.per_act else per_channel(v, a.shape)

    def step(self, s):
        c, shape = self.c, self.c['shape']
        N = shape[0]
        eps = c['eps']
        epilogue = c.get('epilogue')
        x_all = decode(s['x'])
        dy_all = decode(s['dy'])
        k = c.get('virtual_batch_size') or N
        if s['training'] and N % k:
            raise ValueError('virtual_batch_size must divide N')
        groups = N // k if s['training'] else 1
        per = x_all.size // N
        out = {}
        ys, means, stored = [], [], []
        saved = []
        for gi in range(groups):
            n = N // groups
            x, ax = self.view(x_all[gi * n * per:(gi + 1) * n * per], n)
            b = lambda v: self.bcast(v, x)
            if s['training']:
                M = x.size // (x.shape[1] if self.per_act else shape[1])
                mean = x.mean(axis=ax)
                var = ((x - b(mean)) ** 2).mean(axis=ax)
                sigma_b = np.sqrt(var + eps)
                xhat = (x - b(mean)) / b(sigma_b)
                r, d = np.ones_like(mean), np.zeros_like(mean)
                if self.renorm:
                    r = np.clip(sigma_b / self.spread, 1 / c['rmax'], c['rmax'])
                    d = np.clip((mean - self.mu) / self.spread, -c['dmax'], c['dmax'])
                means.append(mean)
                stored.append(sigma_b if self.renorm else var * M / (M - 1))
                if groups == 1 and not self.renorm:
                    out.update(batch_mean=mean, batch_var_biased=var)
                if groups == 1 and self.renorm:
                    out.update(r=r, d=d)
                ys.append(b(self.gamma) * (xhat * b(r) + b(d)) + b(self.beta))
                saved.append((x, ax, xhat, r, d, sigma_b))
            else:
                inv = 1 / self.spread if self.renorm else 1 / np.sqrt(self.spread + eps)
                xhat = (x - b(self.mu)) * b(inv)
                ys.append(b(self.gamma) * xhat + b(self.beta))
                saved.append((x, ax, xhat, None, None, inv))
        y = np.concatenate([v.ravel() for v in ys])
        if epilogue == 'add_relu':
            y = y + decode(s['z'])
        if epilogue:
            y = np.where(y < 0, 0.0, y)
            dy_all = np.where(y > 0, dy_all, 0.0)
            if epilogue == 'add_relu':
                out['dz'] = dy_all.copy()
        dxs, dgamma, dbeta = [], 0, 0
        for gi, (x, ax, xhat, r, d, spread) in enumerate(saved):
            n = N // groups
            dy = dy_all[gi * n * per:(gi + 1) * n * per].reshape(x.shape)
            b = lambda v: self.bcast(v, x)
            if s['training']:
                g = dy * b(self.gamma * r)  # gradient w.r.t. xhat; r and d are constants
                dxs.append((g - b(g.mean(axis=ax)) - xhat * b((g * xhat).mean(axis=ax))) / b(spread))
                dgamma = dgamma + (dy * (xhat * b(r) + b(d))).sum(axis=ax)
            else:
                dxs.append(dy * b(self.gamma * spread))
                dgamma = dgamma + (dy * xhat).sum(axis=ax)
            dbeta = dbeta + dy.sum(axis=ax)
        if s['training']:
            self.tracked += 1
            f = (1 / self.tracked) if c['momentum'] is None else c['momentum']
            mean, stat = np.mean(means, axis=0), np.mean(stored, axis=0)
            ok = np.isfinite(mean) & np.isfinite(stat)  # a non-finite channel keeps its running stats
            self.mu = np.where(ok, (1 - f) * self.mu + f * mean, self.mu)
            self.spread = np.where(ok, (1 - f) * self.spread + f * stat, self.spread)
        out.update(y=y, dx=np.concatenate([v.ravel() for v in dxs]), dgamma=dgamma, dbeta=dbeta,
                   running_mean=self.mu.copy())
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
            plain = not any(k in case for k in EXTENSIONS)
            if have_torch and plain and not m.renorm and not s.get('skip_outputs'):
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


def extensions(target):
    """extensions.json: cases for the extension fields, inputs from NumPy's RNG (seed 2017) rounded
    to float32, expected values from Module above in float64."""
    rng = np.random.default_rng(2017)
    f32 = lambda a: np.asarray(a, dtype=np.float32).astype(np.float64)

    def case(name, shape, steps, **fields):
        per_act = fields.get('per_activation', False)
        F = int(np.prod(shape[1:])) if per_act else shape[1]
        c = {'name': name, 'op': 'batch_norm', 'layout': 'NCHW', 'shape': shape, 'momentum': fields.pop('momentum', 0.1),
             'eps': 1e-5, 'affine': True, 'gamma': encode(f32(rng.uniform(0.5, 1.5, F))),
             'beta': encode(f32(rng.uniform(-0.5, 0.5, F))), 'running_mean_init': encode(f32(rng.uniform(-0.5, 0.5, F))),
             'running_var_init': encode(f32(rng.uniform(0.5, 2.0, F))), **fields, 'steps': []}
        if c.get('expect_error'):
            c['steps'] = [{'training': True, 'x': encode(f32(rng.normal(size=int(np.prod(shape))))),
                           'dy': encode(f32(rng.normal(size=int(np.prod(shape)))))}]
            return c
        m = Module(c)
        scale = f32(rng.uniform(0.5, 3.0, shape[1])).reshape((1, shape[1]) + (1,) * (len(shape) - 2))
        shift = f32(rng.uniform(-2.0, 2.0, shape[1])).reshape(scale.shape)
        for training in steps:
            s = {'training': training, 'x': encode(f32(rng.normal(size=shape) * scale + shift)),
                 'dy': encode(f32(rng.normal(size=shape)))}
            if c.get('epilogue') == 'add_relu':
                s['z'] = encode(f32(rng.normal(size=shape)))
            out = m.step(s)
            s.update({k: encode(v) for k, v in out.items() if k not in ('batch_mean', 'batch_var_biased', 'r', 'd')})
            c['steps'].append(s)
        return c

    T, E = True, False
    cases = [
        case('ext_relu_2x4x3x3', [2, 4, 3, 3], [T, T, E], epilogue='relu'),
        case('ext_add_relu_3x4x2x3', [3, 4, 2, 3], [T, T, E], epilogue='add_relu'),
        case('ext_add_relu_1d_8x5', [8, 5], [T, E], epilogue='add_relu'),
        case('ext_ghost_k2_6x3x3x3', [6, 3, 3, 3], [T, T, E], virtual_batch_size=2),
        case('ext_ghost_k3_1d_12x4', [12, 4], [T, T, E], virtual_batch_size=3),
        case('ext_ghost_k4_momentum_null_8x2x2x2', [8, 2, 2, 2], [T, T, E], virtual_batch_size=4, momentum=None),
        case('ext_ghost_not_dividing_N', [6, 3, 2, 2], [T], virtual_batch_size=4,
             expect_error='N = 6 is not a multiple of virtual_batch_size 4: refused with a clear, typed error'),
        case('ext_per_activation_8x2x2x3', [8, 2, 2, 3], [T, T, E], per_activation=True),
        case('ext_per_activation_1d_6x7', [6, 7], [T, E], per_activation=True),
        case('ext_shards2_6x4x3x3', [6, 4, 3, 3], [T, T, E], shards=2),
        case('ext_shards3_uneven_7x3x2x2', [7, 3, 2, 2], [T, T, E], shards=3),
        case('ext_shards3_single_sample_5x4x2x2', [5, 4, 2, 2], [T, E], shards=3),
        case('ext_shards2_add_relu_4x4x2x2', [4, 4, 2, 2], [T, E], shards=2, epilogue='add_relu'),
        case('ext_ghost_k2_relu_4x3x2x2', [4, 3, 2, 2], [T, E], virtual_batch_size=2, epilogue='relu'),
        case('ext_ghost_k4_per_activation_8x2x2x2', [8, 2, 2, 2], [T, E], virtual_batch_size=4, per_activation=True),
        case('ext_shards2_per_activation_6x3x2x2', [6, 3, 2, 2], [T, E], shards=2, per_activation=True),
    ]
    out = {'generator': 'conformance/generate.py extensions (NumPy float64, seed 2017)', 'set': 'extensions', 'cases': cases}
    Path(target).write_text(json.dumps(out))
    print(f'wrote {target}: {len(cases)} cases')


def main(argv):
    if len(argv) >= 1 and argv[0] == 'verify':
        files = argv[1:] or [str(HERE / n) for n in ('pytorch_golden.json', 'faults.json', 'extensions.json')]
        sys.exit(0 if all([verify(f) for f in files]) else 1)
    if len(argv) in (1, 2) and argv[0] == 'faults':
        return faults(argv[1] if len(argv) == 2 else HERE / 'faults.json')
    if len(argv) in (1, 2) and argv[0] == 'extensions':
        return extensions(argv[1] if len(argv) == 2 else HERE / 'extensions.json')
    print(__doc__)
    sys.exit(2)


if __name__ == '__main__':
    main(sys.argv[1:])
