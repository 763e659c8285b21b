"""Training the multi-task network: fit/evaluate loops, metrics, progress, checkpoints.

- ``fit`` shuffles each epoch with ``np.random.default_rng([seed, epoch])``, so an epoch's
  batches depend only on the seed and the epoch number: resuming from a checkpoint written
  after epoch e replays epochs e+1… exactly as an uninterrupted run would.
- Progress follows Keras's log (``Epoch 3/10`` then ``60/60 [====] - 1s 12ms/step - loss:
  … - user_loss: … - val_…``): a live bar on a terminal, one plain line per epoch otherwise.
- A NaN or infinite loss stops training with ``TrainingError`` naming the task, epoch and
  step; the last checkpoint (written after the last finished epoch) stays intact. On the
  GPU the losses stay on the device and are read every ``loop.READ_EVERY`` steps (and on
  progress redraws, at the epoch's end, on Ctrl-C), so there the error names the steps
  since the last read; the host backends read, and check, every step.
- ``fit(..., cuda_graph=True)`` (cupy) replays each step from a CUDA graph captured once
  per batch shape (``graph``).
- Checkpoints are one ``.npz`` (no pickle): ``model/<param>``, ``optim/<key>``, ``prep/<key>``
  arrays and a JSON ``meta`` string; written to a temporary file that is then renamed over
  the old one, so a crash never leaves a half-written checkpoint.
- ``fit(..., balancer=Balancer(model, "uncertainty", pcgrad=True, conflict_every=10))``
  weighs the task losses, combines their gradients and measures how they conflict
  (``balancing`` has the formulas, ``balancer`` the step).
- ``fit(..., dist=ProcessGroup())`` under ``mpiexec`` trains one replica per rank on its
  shard of each global batch; ``evaluate(..., dist=...)`` gathers the predictions
  (``minimtl.distributed``).
"""

from ..checkpoint import CheckpointError, load_checkpoint, save_checkpoint
from ..metrics import roc_auc, task_metrics
from .balancer import Balancer
from .balancing import WEIGHTINGS
from .evaluate import evaluate, to_tensors
from .loop import TrainingError, fit
from .progress import History

__all__ = ["fit", "Balancer", "WEIGHTINGS", "evaluate", "to_tensors", "History",
           "TrainingError", "CheckpointError", "save_checkpoint", "load_checkpoint", "roc_auc",
           "task_metrics"]
