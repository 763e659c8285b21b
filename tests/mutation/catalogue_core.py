"""Mutants of the engine, the optimizers, the metrics and the data pipeline."""

from __future__ import annotations

from tests.mutation.mutant import edits

ENGINE = ("tests/autograd", "tests/ops", "tests/gradcheck", "tests/nn", "-k", "not cuda_host")
OPTIM = ("tests/optim", "tests/autograd/test_aliasing.py", "-k", "not cuda_host")
METRICS = ("tests/train/test_metrics.py", "tests/train/test_training.py")
DATA = ("tests/train/test_data.py",)
BALANCING = ("tests/train/test_balancing.py", "tests/train/test_balancer.py")
DISTRIBUTED = ("tests/distributed",)
LAUNCHES = ("tests/kernels/test_launches.py",)
GRAPH = ("tests/train/test_cuda_graph_on_host.py",)
PRIORS = ("tests/train/test_output_bias.py",)
NAMES = ("tests/train/test_tasks.py",)

MUTANTS = (
    edits("minimtl/autograd.py", "engine", ENGINE, [
        # a leaf's grad is the caller's gradient array itself
        ("root.grad = gradient.copy() if root.grad is None", "root.grad = gradient if "
         "root.grad is None"),
        # fan-out into a leaf: the second path's gradient replaces the first
        ("leaf_grads[id(t)] = (t, g if prev is None else prev[1] + g)",
         "leaf_grads[id(t)] = (t, g)"),
        # fan-out inside the graph
        ("slots[t._index] = g if prev is None else prev + g", "slots[t._index] = g"),
        # aliasing: overlapping arrays, broadcast views and the caller's gradient kept
        ("if not g.flags.c_contiguous or any(lo < span[1] and span[0] < hi for lo, hi in "
         "taken):", "if any(lo < span[1] and span[0] < hi for lo, hi in taken):"),
        ("if not g.flags.c_contiguous or any(lo < span[1] and span[0] < hi for lo, hi in "
         "taken):", "if not g.flags.c_contiguous:"),
        ("        taken.append(span)\n", ""),
        ("    taken = [_span(gradient)]", "    taken = []"),
        ("lo, hi = lo + min(0, s * (n - 1)), hi + max(0, s * (n - 1))",
         "lo, hi = lo, hi + max(0, s * (n - 1))"),
        # accumulation in place into an array someone else may hold
        ("t.grad = t.grad + g", "t.grad += g"),
        # the graph kept after backward (a second backward then silently double-counts)
        ("    if not retain_graph:\n        node.ctx = None",
         "    if retain_graph:\n        node.ctx = None"),
        # the walk in the wrong order
        ("    order.reverse()\n    return order", "    return order"),
        ("return xp.ones(root.data.shape, dtype=root.data.dtype)",
         "return xp.full(root.data.shape, 2, dtype=root.data.dtype)"),
        # on_leaf: told after a leaf's first user, before its gradient is complete
        ("last[id(t)] = (k, t)", "last.setdefault(id(t), (k, t))"),
        # on_leaf: a leaf whose gradient never arrived is not announced at all
        ("on_leaf(t, None if g is None else g[1])",
         "None if g is None else on_leaf(t, g[1])"),
        # incoming gradients passed on as they come (a transposed or sliced one included)
        ("if g is not None and not g.flags.c_contiguous and not node.fn.strided_gradients:",
         "if g is not None and not g.flags.c_contiguous and False:"),
        # every op, not only the view ops, handed strided gradients
        ("if g is not None and not g.flags.c_contiguous and not node.fn.strided_gradients:",
         "if g is not None and not g.flags.c_contiguous and node.fn.strided_gradients:"),
        # a gradient accumulated into an input that needs none
        ("if g is None or not need:", "if g is None:"),
        # un-broadcasting
        ("g = g.sum(axis=stretched, keepdims=True)", "g = g.mean(axis=stretched, keepdims=True)"),
        ("g = g.sum(axis=tuple(range(extra)))", "g = g.mean(axis=tuple(range(extra)))"),
    ]),
    edits("minimtl/gradients.py", "engine", ENGINE, [
        # results alias the caller's gradient (or each other)
        ("Tensor._from_op(g.copy(), output.backend, None, 0)",
         "Tensor._from_op(g, output.backend, None, 0)"),
        # an unused tensor silently None, or a used one refused
        ("if g is None and not allow_unused:", "if g is None and allow_unused:"),
        # an intermediate tensor's gradient never recorded
        ("                    wanted[(id(node), i)] = g",
         "                    wanted[(id(node), i)] = None"),
        # the consumers of an intermediate tensor skipped (its gradient never arrives)
        ("id(t._node) in needed or (id(t._node), t._index) in wanted)):",
         "id(t._node) in needed)):"),
    ]),
    edits("minimtl/function.py", "engine", ENGINE, [
        ("record = _mode.enabled and any(needs_grad)", "record = any(needs_grad)"),
        ("elif t.backend != backend:", "elif t.backend is None:"),
    ]),
    edits("minimtl/ops/reduce.py", "engine", ENGINE, [
        ("return tuple(sorted(axes))", "return tuple(axes)"),
        # the mutant: squeezes every size-1 axis, wrong only at batch size 1
        ("return y if keepdims else ctx.xp.squeeze(y, axis=axes)",
         "return y if keepdims else ctx.xp.squeeze(y)"),
        ("return ((hit * (g / count)).astype(x.dtype, copy=False),)",
         "return ((hit * g).astype(x.dtype, copy=False),)"),
        ('/ gy.dtype.type(max(p["n"], 1))', '/ gy.dtype.type(max(p["n"] - 1, 1))'),
        ('return (ctx.xp.broadcast_to(g, p["shape"]).copy(),)',
         'return (ctx.xp.broadcast_to(g, p["shape"]),)', 0,
         "the read-only broadcast view is never kept or written: the engine copies a view "
         "before making it a .grad, no backward writes into its gy, and every kernel takes a "
         "contiguous copy (a graph through each kernel family summed over axes gave "
         "bit-identical gradients on numpy, numba and cuda_host with and without the copy)"),
    ]),
    edits("minimtl/ops/shape.py", "engine", ENGINE, [
        ('ctx.params = {"inverse": tuple(axes.index(i) for i in range(x.ndim))}',
         'ctx.params = {"inverse": axes}'),
        ("            start += n\n", "            start += 1\n"),
        ("ctx.xp.take(gy, i, axis=axis) if need else None",
         "ctx.xp.take(gy, i, axis=0) if need else None"),
        ('xp.add.at(gx, p["index"], gy)', 'gx[p["index"]] = gy'),
    ]),
    edits("minimtl/ops/elementwise.py", "engine", ENGINE, [
        ("gb = -gy * a / (b * b)", "gb = -gy * a / b"),
        ("return (gy * y * (1 - y),)", "return (gy * y * (1 + y),)"),
        ("return (gy * (y > 0),)", "return (gy * (y >= 0),)"),
        ("return (gy * (1 - y * y),)", "return (gy * (1 - y),)"),
        ("return (gy * (p * x ** (p - 1)),)", "return (gy * (p * x ** p),)"),
        ("ctx.xp.where(cond, zero, gy)", "ctx.xp.where(cond, gy, zero)"),
        ("return gy, (-gy if ctx.needs_grad[1] else None)",
         "return gy, (gy if ctx.needs_grad[1] else None)"),
    ]),
    edits("minimtl/ops/linalg.py", "engine", ENGINE, [
        ("gb = gy.sum(axis=0) if ctx.needs_grad[2] else None",
         "gb = gy.mean(axis=0) if ctx.needs_grad[2] else None"),
        ("gw = _mm(ctx, gy.T, x) if ctx.needs_grad[1] else None",
         "gw = _mm(ctx, gy.T, x[::-1]) if ctx.needs_grad[1] else None"),
        # the blocked product's result altered (on numba the blocks are what Linear returns)
        ("return _threads.matmul(a, b) if", "return 1.0001 * _threads.matmul(a, b) if"),
    ]),
    edits("minimtl/functional.py", "engine", ENGINE, [
        # the mutant: 'same' padding's odd extra zero on the left
        ("return total // 2, total - total // 2", "return total - total // 2, total // 2"),
    ]),
    edits("minimtl/gradcheck.py", "engine", ("tests/gradcheck",), [
        ("bad = err > atol + rtol * np.abs(numerical)",
         "bad = err > atol + rtol * np.abs(numerical) + 1.0"),
        ("return [(p - m) / (2 * eps) for p, m in zip(plus, minus)]",
         "return [(p - m) / eps for p, m in zip(plus, minus)]"),
    ]),
    edits("minimtl/optim.py", "optim", OPTIM, [
        # the mutant: the momentum buffer aliases the gradient
        ('b = state["momentum_buffer"] = g.copy()', 'b = state["momentum_buffer"] = g'),
        ("b *= self.momentum\n", "b *= 1 - self.momentum\n"),
        ("g = g + self.momentum * b if self.nesterov else b",
         "g = g + b if self.nesterov else b"),
        ("g = g + self.weight_decay * p.data  # a new array",
         "g = g - self.weight_decay * p.data  # a new array"),
        ("p.data *= 1 - self.lr * self.weight_decay", "p.data *= 1 - self.weight_decay"),
        ("c2=math.sqrt(1 - b2**t)", "c2=math.sqrt(1 - b2**(t + 1))"),
        ("c2=math.sqrt(1 - b2**t)", "c2=math.sqrt(1 - b1**t)"),
        ('state["step"] += 1', 'state["step"] = 1'),
        ("coef = min(1.0, max_norm / (total + 1e-6))",
         "coef = max(1.0, max_norm / (total + 1e-6))"),
        ("p.grad = p.grad * p.grad.dtype.type(coef)", "p.grad *= p.grad.dtype.type(coef)"),
        # the fused Adam step taken with a parameter at another t
        ("and (s.get(\"step\") if \"m\" in s else None) == t0", ""),
        # the fused step does not advance the per-parameter t
        ("        for state in self.state:\n            state[\"step\"] = t\n", ""),
        # the device counter kept when the step falls back to one parameter at a time
        ("self._steps_to_host(keep_counter=False)", "self._steps_to_host(keep_counter=True)"),
        # the device counter not read back for a checkpoint
        ("        self._steps_to_host(keep_counter=True)\n", ""),
    ]),
    edits("kernels/adam/reference.py", "optim", OPTIM, [
        # the bias correction of v multiplied instead of divided
        ("tmp /= c2", "tmp *= c2"),
        ("tmp += eps", "tmp -= eps"),
        ("    m *= b1\n", "    m *= b2\n"),
    ]),
    edits("minimtl/metrics.py", "metrics", METRICS, [
        # ties not averaged
        ("ranks[order[s:e]] = 0.5 * (s + e - 1) + 1", "ranks[order[s:e]] = s + 1"),
        # the Mann–Whitney offset
        ("n_pos * (n_pos + 1) / 2) / (n_pos * n_neg)",
         "n_pos * (n_pos - 1) / 2) / (n_pos * n_neg)"),
        # swapped positives
        ("positive = positive.astype(bool)", "positive = ~positive.astype(bool)"),
        # the wrong score column of a label's AUC
        ("roc_auc(scores[:, k], positive[:, k])",
         "roc_auc(scores[:, (k + 1) % scores.shape[1]], positive[:, k])"),
    ]),
    edits("minimtl/objectives.py", "metrics", METRICS, [
        # the wrong positives of the softmax head's one-vs-rest AUC
        ("target[:, None] == np.arange(", "target[:, None] != np.arange("),
        # thresholds
        ("acc = float(np.mean((output > 0.5) == (target > 0.5)))",
         "acc = float(np.mean((output >= 0.5) == (target > 0.5)))"),
        ('"auc": macro_auc(output, target > 0.5)',
         '"auc": macro_auc(output, np.repeat(target[:, :1], target.shape[1], axis=1) > 0.5)'),
        # MSE reported as RMSE; signed error as MAE
        ('"rmse": float(np.sqrt(np.mean(err**2)))', '"rmse": float(np.mean(err**2))'),
        ('"mae": float(np.mean(np.abs(err)))', '"mae": float(np.mean(err))'),
        ("acc = float(np.mean(np.argmax(output, axis=1) == target))",
         "acc = float(np.mean(np.argmax(output, axis=1) != target))"),
        # the training accuracy of fit
        ("return ((logits > 0) == (target > 0.5)).mean(axis=1).sum()",
         "return ((logits >= 0) == (target > 0.5)).mean(axis=1).sum()"),
        ("return (logits.argmax(axis=1) == labels).sum()",
         "return (logits.argmax(axis=-1) == labels[::-1]).sum()"),
        ("labels = target.argmax(axis=1) if target.ndim == 2 else target",
         "labels = target[:, 0] if target.ndim == 2 else target"),
        # probability rows scored by their first entry instead of their argmax
        ("return np.argmax(target, axis=1) if target.ndim == 2 else target",
         "return np.argmax(target[:, :1], axis=1) if target.ndim == 2 else target"),
    ]),
    edits("minimtl/train/evaluate.py", "metrics", METRICS, [
        # batch means averaged without their batch sizes
        ("loss_sums[t] += values[t] * n",
         "loss_sums[t] += values[t] * batch_size"),
        ("total += model.loss_weights[t] * loss", "total += loss"),
    ]),
    edits("minimtl/train/loop.py", "metrics", METRICS, [
        # a step's mean losses summed without its batch size
        ('self.unread.append((batch["n"] if batch.get("means") else 1,',
         "self.unread.append((1,"),
        # the steps read since the last read not folded into the epoch's sums
        ("                total[t] += new[key][t]\n", ""),
        # every step's values read into the first task's sums
        ("                    new[key][t] += next(values) * factor",
         "                    new[key][self.names[0]] += next(values) * factor"),
        # the stacked read's values handed back in the wrong places
        ("        for i, v in zip(arrays, host.tolist()):",
         "        for i, v in zip(arrays[::-1], host.tolist()):"),
    ]),
    edits("minimtl/train/loop.py", "metrics", ("tests/train/test_cupy_path_on_host.py",), [
        # the GPU reads every step again
        ('read_every = READ_EVERY if model_backend == "cupy" else 1', "read_every = 1"),
    ]),
    edits("minimtl/train/balancing.py", "optim", BALANCING, [
        # PCGrad projecting agreeing pairs instead of conflicting ones
        ("            if dot < 0:", "            if dot > 0:"),
        # projected onto the wrong normal plane
        ("gi -= (dot / float((gj * gj).sum())) * gj", "gi -= (dot / float((gi * gi).sum())) * gj"),
        # GradNorm's weights not renormalised to sum to K
        ("    w = np.maximum(w, 1e-3)\n    return w * (len(w) / w.sum())",
         "    w = np.maximum(w, 1e-3)\n    return w"),
        # DWA's temperature multiplying
        ("e = np.exp((r - r.max()) / temperature)", "e = np.exp((r - r.max()) * temperature)"),
        # uncertainty's regulariser ½·s_k dropped to s_k
        ("term = losses[n] * precision[i] + self.log_var[i] * 0.5",
         "term = losses[n] * precision[i] + self.log_var[i] * 1.0"),
        ("float((a * b).sum()) / (na * nb)", "float((a * b).sum()) / (na * na)"),
        ("2 * math.sqrt(sa * sb) / (sa + sb)", "math.sqrt(sa * sb) / (sa + sb)"),
    ]),
    edits("minimtl/train/balancer.py", "optim", BALANCING, [
        # the last shared layer: every shared module (the towers' first convs too), or the
        # first one the walk reaches only (one of the article's three towers)
        ("if mine and over <= mine:", "if mine:"),
        ("above[id(child)] = below if prev is None or len(below) < len(prev) else prev",
         "above[id(child)] = below if prev is None or len(below) > len(prev) else prev"),
        # on the last layer: the cosine of the whole shared vectors instead
        ("last_grads = {k: grad(losses[k], self.last, retain_graph=True,",
         "last_grads = {k: grad(losses[k], [p for _, p in self.shared], retain_graph=True,"),
        # a parameter either task reaches counted as shared
        ("overlap = any(bool((a & b).any())", "overlap = any(bool((a | b).any())"),
        ("measure = self.every > 0 and self.step_count % self.every == 0",
         "measure = self.every > 0 and self.step_count % self.every == 1"),
        ("float((c < 0).mean())", "float((c > 0).mean())"),
        # PCGrad's update not written back
        ("                _accumulate(p, update[start:start + n]",
         "                _ = (p, update[start:start + n]"),
        # a measured step's gradient without a task's weight
        ("parts = [task_grads[k][i].data * float(w[k])", "parts = [task_grads[k][i].data"),
    ]),
    edits("minimtl/data/preprocessing.py", "data", DATA, [
        ("self.std = np.where(std > 0, std, 1.0)", "self.std = np.where(std > 0, std, 0.5)"),
        ("return ((x - self.mean) / self.std).astype(_float_dtype(x))",
         "return ((x - self.mean) * self.std).astype(_float_dtype(x))"),
        ("        axes = tuple(range(x.ndim - 1))\n        self.mean",
         "        axes = tuple(range(x.ndim - 2))\n        self.mean"),
        ("span = self.max - self.min", "span = self.max + self.min"),
        ("        a = (self.window - 1) // 2\n        b = self.window - 1 - a\n        # Prefix",
         "        a = self.window // 2\n        b = self.window - 1 - a\n        # Prefix"),
        ("hi = np.clip(t + b + 1, 0, length)", "hi = np.clip(t + b, 0, length)"),
        ("                x = step.fit_transform(x)\n", "                step.fit(x)\n"),
    ]),
    edits("minimtl/distributed/buckets.py", "optim", DISTRIBUTED, [
        # gradients summed without the shards' weights n_r / n
        ("self.dtype.type(weight), out=flat[start:stop])",
         "self.dtype.type(1.0), out=flat[start:stop])"),
        # .grad a view of the flat buffer the next step overwrites
        ("p.grad = flat[start:stop].reshape(p.shape).copy() if count > 0 else None",
         "p.grad = flat[start:stop].reshape(p.shape) if count > 0 else None"),
        # a gradient dropped unless every rank had one
        ("if count > 0 else None", "if count > 1 else None"),
    ]),
    edits("minimtl/distributed/group.py", "optim", DISTRIBUTED, [
        # equal weights for unequal shards
        ("return GradientReduce(self, self._buckets, n_local / n_global,",
         "return GradientReduce(self, self._buckets, 1 / self.size,"),
        # rank 0 overwritten by the others instead of the other way round
        ("            if not self.is_root:\n                value = flat",
         "            if self.is_root:\n                value = flat"),
    ]),
    edits("minimtl/distributed/overlap.py", "optim", DISTRIBUTED, [
        # the overlapped path packs without the shard's weight
        ("self.xp.multiply(g.reshape(-1), self.weight, out=flat[start:stop])",
         "self.xp.multiply(g.reshape(-1), 1.0, out=flat[start:stop])"),
        # a parameter announced by the walk is packed again from .grad (None: zeros)
        ("                if not self._ready[i]:\n                    self._write(i, p.grad)",
         "                if True:\n                    self._write(i, p.grad)"),
        # no bucket ever starts during the walk (all after it: right sums, no overlap)
        ("        if self._left[k] == 0:\n            self._start(k)",
         "        if self._left[k] == -1:\n            self._start(k)"),
        # a parameter's presence not counted: its reduced gradient dropped
        ("            self._present[i] = 1.0\n", "            pass\n"),
    ]),
    edits("minimtl/distributed/group.py", "data", DISTRIBUTED, [
        # overlapping shards: a row trained twice in a step
        ("return n * rank // size, n * (rank + 1) // size",
         "return n * rank // size, min(n, n * (rank + 1) // size + 1)"),
    ]),
    edits("minimtl/train/evaluate.py", "metrics", DISTRIBUTED, [
        # the gathered evaluation's losses and gate statistics of rank 0 alone
        ("loss_sums = {t: sum(p[1][t] for p in parts) for t in loss_sums}",
         "loss_sums = {t: parts[0][1][t] for t in loss_sums}"),
        ("stats.rows = sum(p[2][1] for p in parts)", "stats.rows = parts[0][2][1]"),
    ]),
    edits("minimtl/train/loop.py", "metrics", DISTRIBUTED, [
        # the reduced loss sums read from the hit counts' slots
        ('"sums": dict(zip(names, total[:k].tolist()))',
         '"sums": dict(zip(names, total[k:2 * k].tolist()))'),
    ]),
    edits("minimtl/data/dataset.py", "data", DATA, [
        ("ds.subset(perm[n_train:n_train + n_val])",
         "ds.subset(perm[n_train - 1:n_train + n_val])"),
        ("n_val = int(round(n * val_fraction))", "n_val = int(n * val_fraction)"),
        ("if drop_last and len(idx) < batch_size:", "if drop_last and len(idx) <= batch_size:"),
        ("for start in range(0, n, batch_size):", "for start in range(1, n, batch_size):"),
    ]),
    edits("kernels/launches.py", "engine", LAUNCHES, [
        # a nested count's launches not added to the counts around it
        ("            c = c._outer", "            c = None"),
        # tags ignored; an inner tag or count not giving way to the outer one on exit
        ("    op = _op if _op is not None else UNTAGGED", "    op = UNTAGGED"),
        ("        yield\n    finally:\n        _op = outer",
         "        yield\n    finally:\n        _op = None"),
        ("        yield c\n    finally:\n        current = outer",
         "        yield c\n    finally:\n        current = None"),
        # cupy's lowered names kept whole, template arguments kept
        ("return name[m.end():m.end() + int(m.group(1))]", "return name[m.end():]"),
        ('return name.split("<", 1)[0]', "return name"),
        # CountingXp: a dtype change not counted; asarray counted for a strided array
        ("    if dtype is not None and a.dtype != dtype:\n        return True",
         "    if dtype is not None and a.dtype != dtype:\n        return False"),
        ('return name == "ascontiguousarray" and not a.flags.c_contiguous',
         "return not a.flags.c_contiguous"),
    ]),
    edits("kernels/_cuda.py", "engine", LAUNCHES, [
        # a launch of our kernels not counted
        ("        launches.current.add(launches.kernel_name(fn))", "        pass"),
    ]),
    edits("minimtl/train/graph.py", "cuda_host", GRAPH, [
        # the step's gradients left where the capture's backward put them
        ("                g[...] = p.grad              # the optimizer reads fixed addresses\n",
         ""),
        # the losses read before the replay has written them
        ("            self.graph.launch(self.stream)\n            _set_host_counters",
         "            _set_host_counters"),
        # the host's step counts not advanced by a replay
        ("_set_host_counters(self.owner.optimizer, _host_counters(self.owner.optimizer), 1)",
         "_set_host_counters(self.owner.optimizer, _host_counters(self.owner.optimizer), 0)"),
        # a batch of a new shape replayed from the graph of another
        ("        step = self.captured.get(key)", "        step = next(iter("
         "self.captured.values()), None)"),
        # the next batch not copied in: every replay trains on the captured batch
        ("            self.load(inputs, targets)\n", ""),
    ]),
    edits("minimtl/ops/shape.py", "engine", ("tests/models/test_multitask.py",), [
        # adjacent rows of a larger array joined as a view of all of it
        ("    if at != address(base) + base.nbytes:\n        return None\n", ""),
        # rows out of order joined as a view
        ("        if address(x) != at:\n            return None\n", ""),
    ]),
    edits("minimtl/objectives.py", "metrics", PRIORS, [
        # the rate, not its log-odds; the log-odds of the rate's complement
        ("return np.log(rate) - np.log1p(-rate)", "return rate"),
        ("return np.log(rate) - np.log1p(-rate)", "return np.log1p(-rate) - np.log(rate)"),
        # rates not clipped (a label never seen gets an infinite bias)
        ("rate = np.clip(np.asarray(rate, dtype=np.float64), PRIOR_EPS, 1 - PRIOR_EPS)",
         "rate = np.asarray(rate, dtype=np.float64)"),
        # class counts without minlength (a class absent from the targets drops out)
        ("np.bincount(target.astype(np.int64), minlength=outputs)",
         "np.bincount(target.astype(np.int64))"),
        # probability rows' frequencies from their first row only
        ("target.astype(np.float64).mean(axis=0)", "target.astype(np.float64)[0]"),
        # not centred
        ("        return b - b.mean()\n", "        return b\n"),
        # a regression head's bias from the targets' overall mean, not per column
        ("return target.reshape(len(target), -1).mean(axis=0)",
         "return np.full(target.reshape(len(target), -1).shape[1], target.mean())"),
    ]),
    edits("minimtl/models/base.py", "metrics", PRIORS, [
        # the prior computed but not written
        ("            bias.data[...] = xp_of(bias.backend).asarray(value, dtype=bias.dtype)\n",
         ""),
        # targets not checked
        ("            t.objective.check_targets(t.name, target, t.outputs)\n", ""),
    ]),
    edits("minimtl/models/network.py", "metrics", PRIORS, [
        # the towers' hidden layers taken for the output layers
        ("return {t: tower.out for t, tower", "return {t: tower.hidden for t, tower"),
    ]),
    edits("minimtl/train/evaluate.py", "metrics", NAMES, [
        # a missing input or target not caught before the batches (a bare KeyError)
        ("        if missing:\n", "        if missing and kind == \"input\":\n"),
        ("        if missing:\n", "        if missing and kind == \"target\":\n"),
    ]),
    edits("minimtl/train/loop.py", "metrics", NAMES, [
        # the validation data not checked up front
        ("    if val is not None:\n        check_names(model, val, \"fit: the validation data\")\n",
         ""),
    ]),
)
MUTANTS = [m for group in MUTANTS for m in group]
