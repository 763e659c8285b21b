"""The training curves of a run (``curves.png``), task balancing (``balance.png``) and a
profiled step's time by op (``profile.png``), drawn with matplotlib when installed."""

from __future__ import annotations

from .checkpoint import atomic_write

__all__ = ["plot_curves", "plot_balance", "plot_profile", "pyplot", "save_png"]


def pyplot():
    """matplotlib's pyplot on the file-only Agg backend, or None when not installed."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return None
    return plt


def save_png(fig, path, dpi: int = 100) -> None:
    """Lay ``fig`` out, write it to ``path`` atomically (a private temporary file, then
    renamed) and close it, also when writing fails."""
    import matplotlib.pyplot as plt

    try:
        fig.tight_layout()
        atomic_write(path, lambda f: fig.savefig(f, dpi=dpi, format="png"))
    finally:
        plt.close(fig)


def plot_curves(history, path: str, best: dict | None = None, tasks=None) -> bool:
    """Loss per task (train solid, validation dashed) and validation accuracy per task next
    to its best achievable accuracy (dotted) (validation RMSE for a regression task), for
    ``tasks`` (names; default the article's three), one colour per task, markers at every epoch
    (a 1-epoch run is one visible point), whole-epoch ticks, legends outside the axes.
    Written atomically (a private temporary file, then renamed). False without matplotlib."""
    plt = pyplot()
    if plt is None:
        return False
    from matplotlib.ticker import MaxNLocator

    from .data import TASKS

    tasks = TASKS if tasks is None else tuple(tasks)
    fig, axes = plt.subplots(1, 2, figsize=(12, 4.2))
    epochs = list(range(1, len(history.epochs) + 1))
    second = "accuracy"
    for t in tasks:
        (line,) = axes[0].plot(epochs, history.series(f"{t}_loss"), "o-", ms=3,
                               label=f"{t} train")
        color = line.get_color()  # a task keeps its colour in every curve
        if history.series(f"val_{t}_loss"):
            axes[0].plot(epochs, history.series(f"val_{t}_loss"), "s--", ms=3, color=color,
                         label=f"{t} val")
        key = f"val_{t}_accuracy"
        if not history.series(key) and history.series(f"val_{t}_rmse"):
            key, second = f"val_{t}_rmse", "accuracy / RMSE"
        if history.series(key):
            axes[1].plot(epochs, history.series(key), "o-", ms=3, color=color,
                         label=f"{t} val")
        if best and best.get(t) is not None:
            axes[1].axhline(best[t], color=color, ls=":", lw=1.2, label=f"{t} best achievable")
    axes[0].set(title="loss per task", xlabel="epoch", ylabel="loss")
    axes[1].set(title=f"validation {second}", xlabel="epoch", ylabel=second)
    for ax in axes:
        if len(epochs) <= 20:
            ax.set_xticks(epochs)
        else:
            ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        ax.set_xlim(0.5, len(epochs) + 0.5)
        ax.grid(alpha=0.3)
        if ax.get_legend_handles_labels()[0]:
            ax.legend(fontsize=7, loc="upper left", bbox_to_anchor=(1.01, 1.0),
                      borderaxespad=0.0)
    save_png(fig, path)
    return True


def plot_profile(rows: list[dict], steps: int, path, top: int = 16) -> bool:
    """Horizontal bars of ms per step for ``Profile.rows()`` (largest first; forward blue,
    backward orange, the optimizer green, the rest grey), the ``top`` largest rows and the
    others summed. Written atomically. False without matplotlib."""
    plt = pyplot()
    if plt is None:
        return False
    shown, rest = rows[:top], rows[top:]
    colours = {"forward": "tab:blue", "backward": "tab:orange", "step": "tab:green"}
    labels = [f"{r['op']} ({r['direction']})" if r["direction"] in ("forward", "backward")
              else r["op"] for r in shown]
    values = [r["ms_step"] for r in shown]
    colour = [colours.get(r["direction"], "tab:gray") for r in shown]
    if rest:
        labels.append(f"{len(rest)} other rows")
        values.append(sum(r["ms_step"] for r in rest))
        colour.append("tab:gray")
    fig, ax = plt.subplots(figsize=(9, 0.32 * len(labels) + 1.4))
    ax.barh(range(len(labels)), values, color=colour)
    ax.set_yticks(range(len(labels)), labels, fontsize=8)
    ax.invert_yaxis()
    ax.set(xlabel="ms per step", title=f"time of a training step by op "
           f"({sum(r['ms_step'] for r in rows):.2f} ms a step, {steps} steps)")
    ax.grid(axis="x", alpha=0.3)
    save_png(fig, path)
    return True


def plot_balance(history, path: str, tasks) -> bool:
    """Task balancing over training: each task's loss weight per epoch (left) and, per
    task pair, the cosine of their gradients on the shared parameters at every measured
    step with the epoch means (right; below 0 the tasks conflict). Written atomically;
    False without matplotlib or when the history holds neither."""
    plt = pyplot()
    if plt is None:
        return False
    epochs = list(range(1, len(history.epochs) + 1))
    weights = {t: history.series(f"weight_{t}") for t in tasks}
    pairs = sorted({k for e in history.epochs for k in e.get("cosines", {})})
    if not any(weights.values()) and not pairs:
        return False
    fig, axes = plt.subplots(1, 2, figsize=(12, 4.2))
    for t, w in weights.items():
        if w:
            axes[0].plot(epochs[:len(w)], w, "o-", ms=3, label=t)
    axes[0].set(title="loss weight per task", xlabel="epoch", ylabel="weight")
    if any(weights.values()):
        axes[0].legend(fontsize=8)
    else:
        axes[0].text(0.5, 0.5, "fixed weights", ha="center", transform=axes[0].transAxes)
    for pair in pairs:
        xs, ys, means = [], [], []
        for e, logs in enumerate(history.epochs, start=1):
            c = logs.get("cosines", {}).get(pair, [])
            xs += [e - 1 + (i + 1) / len(c) for i in range(len(c))]
            ys += c
            if c:
                means.append((e, sum(c) / len(c)))
        (line,) = axes[1].plot(xs, ys, ".", ms=2, alpha=0.4)
        axes[1].plot([m[0] for m in means], [m[1] for m in means], "o-", ms=4,
                     color=line.get_color(), label=f"{pair.replace('|', ' vs ')} (epoch mean)")
    axes[1].axhline(0.0, color="grey", lw=0.8)
    axes[1].set(title="cosine of task gradients on the shared parameters", xlabel="epoch",
                ylabel="cosine", ylim=(-1.05, 1.05))
    if pairs:
        axes[1].legend(fontsize=8)
    save_png(fig, path, dpi=110)
    return True
