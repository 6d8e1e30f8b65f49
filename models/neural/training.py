"""The training loop every neural model shares.

Seeded and deterministic on a given machine and thread count: the same seed gives the same
weights. Each step takes ``batch_size`` sessions (long sessions are cut into windows of
``max_seq_len + 1`` items), and the model's causal ``loss`` trains on every prefix of them at
once. After each epoch the model is scored on a validation split carved from the *training*
sessions (never the test file); the best epoch's weights are kept (``checkpoints/best.pt``
in the output directory), the learning rate decays each epoch, and training stops early
after ``patience`` epochs without improvement or when the wall-clock budget is spent.
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import numpy.typing as npt
import torch
from tqdm import tqdm

from models.data import split_validation
from models.errors import InvalidInputError
from models.neural.base import SessionModel
from models.onnx_contract import pad_batch

logger = logging.getLogger(__name__)

SELECTION_K = 20
"""Early stopping keeps the epoch with the best validation HR@k + MRR@k for this k."""


@dataclass(frozen=True)
class TrainSettings:
    max_epochs: int = 12  # upper bound on passes over the training sessions
    batch_size: int = 128  # sessions per optimiser step (each gives len - 1 targets)
    lr: float = 1e-3  # Adam learning rate of the first epoch
    lr_final: float = 0.02  # learning rate reached at the end of training, as a fraction of
    # lr: exponential annealing over the progress (epochs or time budget, see learning_rate)
    weight_decay: float = 0.0  # decoupled (AdamW) weight decay
    patience: int = 2  # stop after this many epochs without a better validation score
    max_minutes: float | None = None  # wall-clock budget; training stops mid-epoch once spent
    valid_fraction: float = 0.05  # most recent sessions held out for validation (0 = none)
    valid_max_cases: int | None = 20_000  # validation cases sampled per check (None = all)
    seed: int = 0  # seeds weights, dropout and batch order
    device: str = "auto"  # "auto" (CUDA when available, else CPU), "cpu" or "cuda"
    num_threads: int | None = None  # torch CPU threads (None = leave torch's default)
    negatives: int = 0  # 0: full-softmax loss; > 0: sampled softmax with this many shared
    # uniform negatives per step (only when the catalogue is over twice as large)
    bf16: bool | None = None  # bfloat16 matrix products in the full-softmax loss;
    # None = when the device does them fast (CUDA, or a CPU with AMX / AVX512-BF16)
    progress: bool = True  # tqdm progress bars on stderr


@dataclass
class TrainResult:
    """What ``train_model`` did: the kept epoch, its validation figures and the history."""

    best_epoch: int
    best_valid: dict[str, float]
    epochs_run: int
    seconds: float
    stop_reason: str
    history: list[dict[str, float]] = field(default_factory=list)


def fast_bf16(device: torch.device) -> bool:
    """Whether bfloat16 matrix products are fast on ``device`` (not emulated)."""
    if device.type == "cuda":
        return True
    try:
        flags = Path("/proc/cpuinfo").read_text()
    except OSError:
        return False
    return "amx_bf16" in flags or "avx512_bf16" in flags


def resolve_device(device: str) -> torch.device:
    """``auto`` -> CUDA when torch can use it, else CPU; ``cuda`` without CUDA fails clearly."""
    if device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if device == "cuda" and not torch.cuda.is_available():
        raise InvalidInputError("device 'cuda' requested but torch sees no CUDA device")
    return torch.device(device)


def training_windows(sessions: Sequence[Sequence[int]], max_seq_len: int) -> list[np.ndarray]:
    """Sessions of >= 2 items as int64 arrays, cut into windows of ``max_seq_len + 1`` items
    so that no training prefix is longer than the model reads at serving time."""
    windows = []
    for session in sessions:
        items = np.asarray(session, dtype=np.int64)
        for start in range(0, max(len(items) - 1, 1), max_seq_len):
            window = items[start : start + max_seq_len + 1]
            if len(window) >= 2:
                windows.append(window)
    return windows


def epoch_batches(
    windows: list[np.ndarray], batch_size: int, rng: np.random.Generator
) -> list[list[int]]:
    """Shuffled batches of window indices; windows of similar length share a batch (sorted
    within random pools of 50 batches) to keep padding small."""
    order = rng.permutation(len(windows))
    pool = batch_size * 50
    batches: list[list[int]] = []
    for start in range(0, len(order), pool):
        chunk = sorted(order[start : start + pool], key=lambda i: len(windows[i]))
        batches.extend(chunk[i : i + batch_size] for i in range(0, len(chunk), batch_size))
    return [batches[i] for i in rng.permutation(len(batches))]


def collate(windows: list[np.ndarray], index: list[int]) -> tuple[torch.Tensor, torch.Tensor]:
    """Right-padded ``(item_ids (B, T), lengths (B,))`` of the chosen windows."""
    lengths = np.fromiter((len(windows[i]) for i in index), dtype=np.int64, count=len(index))
    ids = np.zeros((len(index), int(lengths.max())), dtype=np.int64)
    for row, i in enumerate(index):
        ids[row, : lengths[row]] = windows[i]
    return torch.from_numpy(ids), torch.from_numpy(lengths)


@torch.no_grad()
def quick_metrics(
    model: SessionModel,
    prefixes: Sequence[Sequence[int]],
    targets: npt.NDArray[np.int64],
    device: torch.device,
    k: int = SELECTION_K,
    batch_size: int = 1024,
) -> dict[str, float]:
    """HR@k and MRR@k of ``model`` on (prefix, target) cases, full ranking, in torch, with
    the pessimistic tie rule of ``models.evaluation.ranks_from_scores``: the target ranks
    after every item scoring the same; a NaN target score is a miss."""
    was_training = model.training
    model.eval()
    hits = rr = 0.0
    try:
        for start in range(0, len(prefixes), batch_size):
            ids, lengths = pad_batch(prefixes[start : start + batch_size], model.config.max_seq_len)
            scores = model(torch.from_numpy(ids).to(device), torch.from_numpy(lengths).to(device))
            target = torch.from_numpy(targets[start : start + batch_size]).to(device)
            target_score = scores.gather(1, target.unsqueeze(1))  # (B, 1)
            rank = (scores[:, 1:] >= target_score).sum(dim=1)  # (B,) target counts itself
            hit = (rank <= k) & (rank > 0)  # rank 0: NaN target score
            rank = rank.clamp(min=1)
            hits += hit.sum().item()
            rr += (hit.float() / rank.float()).sum().item()
    finally:
        model.train(was_training)
    n = max(len(prefixes), 1)
    return {f"hr@{k}": hits / n, f"mrr@{k}": rr / n}


def learning_rate(
    settings: TrainSettings, epochs_done: float, elapsed_s: float, budget_s: float
) -> float:
    """``lr * lr_final ** progress``, progress in [0, 1] being the larger of the fraction
    of ``max_epochs`` done and of the time budget spent: the rate anneals to
    ``lr * lr_final`` by the end whether the epochs or the budget run out first (a slow or
    busy machine still gets a low-rate finish).

    >>> s = TrainSettings(lr=1.0, lr_final=0.25, max_epochs=4)
    >>> learning_rate(s, 2.0, 0.0, float("inf")), learning_rate(s, 1.0, 30.0, 60.0)
    (0.5, 0.5)
    """
    progress = max(epochs_done / settings.max_epochs, elapsed_s / budget_s)
    return settings.lr * settings.lr_final ** min(progress, 1.0)


def _selection_score(metrics: dict[str, float]) -> float:
    """Validation figure early stopping maximises: HR@k + MRR@k, k = ``SELECTION_K``."""
    return metrics[f"hr@{SELECTION_K}"] + metrics[f"mrr@{SELECTION_K}"]


def train_model(
    model: SessionModel,
    sessions: Sequence[Sequence[int]],
    settings: TrainSettings | None = None,
    *,
    valid: tuple[Sequence[Sequence[int]], npt.NDArray[np.int64]] | None = None,
    out_dir: Path | None = None,
) -> TrainResult:
    """Train ``model`` in place on ``sessions`` and leave it holding its best weights.

    ``valid`` gives the validation cases; when it is None and ``settings.valid_fraction`` is
    positive, the most recent sessions are split off with ``models.data.split_validation``.
    With no validation at all, every epoch runs and the last one is kept.
    """
    settings = settings or TrainSettings()
    if settings.num_threads:
        torch.set_num_threads(settings.num_threads)
    torch.manual_seed(settings.seed)
    device = resolve_device(settings.device)
    if valid is None and settings.valid_fraction > 0.0:
        sessions, valid_prefixes, valid_targets = split_validation(
            sessions, settings.valid_fraction, settings.seed, settings.valid_max_cases
        )
        valid = (valid_prefixes, valid_targets)
    elif valid is not None and len(valid[0]) > (settings.valid_max_cases or len(valid[0])):
        keep = np.sort(
            np.random.default_rng(settings.seed).choice(
                len(valid[0]), settings.valid_max_cases, replace=False
            )
        )
        valid = ([valid[0][i] for i in keep], np.asarray(valid[1])[keep])
    if valid is not None and len(valid[0]) == 0:
        valid = None

    bf16 = fast_bf16(device) if settings.bf16 is None else settings.bf16
    windows = training_windows(sessions, model.config.max_seq_len)
    if not windows:
        raise InvalidInputError("no training session has two or more items")
    model.prepare(sessions)
    model.to(device)
    optimizer = torch.optim.AdamW(
        model.parameters(), lr=settings.lr, weight_decay=settings.weight_decay,
        fused=device.type in ("cpu", "cuda"),
    )
    checkpoints = Path(out_dir) / "checkpoints" if out_dir is not None else None
    if checkpoints is not None:
        checkpoints.mkdir(parents=True, exist_ok=True)

    rng = np.random.default_rng(settings.seed)
    budget = settings.max_minutes * 60.0 if settings.max_minutes else math.inf
    started = time.monotonic()
    best_score, best_epoch, best_valid = -math.inf, 0, {}
    best_state = {k: v.detach().clone() for k, v in model.state_dict().items()}
    history: list[dict[str, float]] = []
    stop_reason, since_best, epoch = "max_epochs", 0, 0
    n_targets = sum(len(w) - 1 for w in windows)
    logger.info(
        "training %s on %s (bf16 %s): %d windows, %d targets, %d parameters, valid cases %d",
        model.architecture, device, bf16, len(windows), n_targets,
        sum(p.numel() for p in model.parameters()), len(valid[0]) if valid else 0,
    )
    for epoch in range(1, settings.max_epochs + 1):
        model.train()
        total, steps, out_of_time, lr = 0.0, 0, False, settings.lr
        batches = epoch_batches(windows, settings.batch_size, rng)
        bar = tqdm(batches, desc=f"epoch {epoch}", disable=not settings.progress, leave=False)
        for index in bar:
            lr = learning_rate(
                settings, epoch - 1 + steps / len(batches), time.monotonic() - started, budget
            )
            for group in optimizer.param_groups:
                group["lr"] = lr
            ids, lengths = collate(windows, index)
            loss = model.loss(
                ids.to(device), lengths.to(device), settings.negatives, bf16
            )
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            total += loss.item()
            steps += 1
            if steps % 50 == 0:
                bar.set_postfix(loss=f"{total / steps:.4f}")
            if steps % max(len(batches) // 10, 1) == 0:
                logger.debug("epoch %d: step %d/%d, loss %.4f, %.0f s", epoch, steps,
                             len(batches), total / steps, time.monotonic() - started)
            if time.monotonic() - started > budget:
                out_of_time = True
                break
        bar.close()
        record = {"epoch": float(epoch), "lr": lr, "loss": total / max(steps, 1)}
        if valid is not None:
            record.update(quick_metrics(model, valid[0], valid[1], device))
        record["seconds"] = time.monotonic() - started
        history.append(record)
        logger.info("epoch %d: %s", epoch, {k: round(v, 5) for k, v in record.items()})
        score = _selection_score(record) if valid is not None else float(epoch)
        if score > best_score:
            best_score, best_epoch, since_best = score, epoch, 0
            best_valid = {k: v for k, v in record.items() if "@" in k}
            best_state = {k: v.detach().clone() for k, v in model.state_dict().items()}
            if checkpoints is not None:
                _save_checkpoint(checkpoints / "best.pt", model, settings, epoch, record)
        else:
            since_best += 1
        if checkpoints is not None:
            _save_checkpoint(checkpoints / "last.pt", model, settings, epoch, record)
        if out_of_time:
            stop_reason = "time_budget"
            break
        if valid is not None and since_best >= settings.patience:
            stop_reason = "early_stopping"
            break
    model.load_state_dict(best_state)
    model.eval()
    seconds = time.monotonic() - started
    logger.info(
        "kept epoch %d of %d (%s) after %.0f s: %s",
        best_epoch, epoch, stop_reason, seconds, best_valid,
    )
    return TrainResult(best_epoch, best_valid, epoch, seconds, stop_reason, history)


def _save_checkpoint(
    path: Path, model: SessionModel, settings: TrainSettings, epoch: int, record: dict
) -> None:
    torch.save(
        {
            "architecture": model.architecture,
            "config": asdict(model.config),
            "settings": asdict(settings),
            "epoch": epoch,
            "record": record,
            "state_dict": model.state_dict(),
        },
        path,
    )
