"""Image classification: cross-entropy on logits, accuracy, prediction grids, confusion."""

from __future__ import annotations

from typing import Any

import numpy as np

from studio.tasks.base import Task, to_numpy


def _softmax(z: np.ndarray) -> np.ndarray:
    z = z - z.max(axis=1, keepdims=True)
    e = np.exp(z)
    return e / e.sum(axis=1, keepdims=True)


def confusion_matrix(true: np.ndarray, pred: np.ndarray, num_classes: int) -> np.ndarray:
    """``cm[t, p]`` counts samples of true class t predicted as p."""
    cm = np.zeros((num_classes, num_classes), dtype=np.int64)
    np.add.at(cm, (true.astype(np.int64), pred.astype(np.int64)), 1)
    return cm


class ClassificationTask(Task):
    """Batches are ``(images, labels)``; the model returns logits ``(N, classes)``."""

    kind = "classification"
    metric_names = ("loss", "acc")
    # those taking (N, classes) scores and (N,) class indices; NLLLoss wants log-probabilities
    # (a model ending in LogSoftmax)
    losses = ("CrossEntropyLoss", "NLLLoss", "MultiMarginLoss")

    def _forward(self, model: Any, batch: Any, loss_fn: Any, device: Any) -> tuple:
        x, y = batch[0], batch[1]
        if device is not None and str(device) != "cpu":
            x, y = x.to(device), y.to(device)
        logits = model(x)
        if logits.ndim != 2:
            raise ValueError(
                f"classification: the model must return (N, classes) logits, "
                f"got shape {tuple(logits.shape)}; end the model with a Linear "
                "layer after a Flatten"
            )
        return logits, y, loss_fn(logits, y)

    def data_problem(self, num_classes: int) -> str | None:
        if num_classes < 2:
            return (
                f"the dataset has {num_classes} class{'' if num_classes == 1 else 'es'}: "
                "classification needs at least 2 (one sub-folder of images per class)"
            )
        return None

    def check_fit(self, output_shape: Any, num_classes: int, output_name: str = "") -> str | None:
        problem = self.data_problem(num_classes)
        if problem:
            return problem
        if output_shape is None:
            return None  # a shape error: the Model panel names it
        shape = tuple(output_shape)
        if len(shape) != 1:
            return (
                f"the model's output is {shape} per image, classification needs one score "
                f"per class ({num_classes}): end the model with Flatten and Linear"
            )
        if shape[0] != num_classes:
            layer = f"output layer '{output_name}'" if output_name else "output"
            return (
                f"the model's {layer} gives {shape[0]} class scores but the dataset has "
                f"{num_classes} classes: set its out_features to {num_classes} in the Model "
                f"panel, or use data with {shape[0]} classes"
            )
        return None

    def train_step(self, model: Any, batch: Any, loss_fn: Any, device: Any) -> tuple[Any, dict]:
        logits, y, loss = self._forward(model, batch, loss_fn, device)
        pred = to_numpy(logits).argmax(axis=1)
        n = len(pred)
        correct = float((pred == to_numpy(y)).sum())
        return loss, {"correct": correct, "count": float(n)}

    def eval_step(self, model: Any, batch: Any, loss_fn: Any, device: Any) -> tuple[dict, dict]:
        logits, y, loss = self._forward(model, batch, loss_fn, device)
        z = to_numpy(logits).astype(np.float32)
        yt = to_numpy(y).astype(np.int64)
        pred = z.argmax(axis=1)
        n = len(pred)
        stats = {
            "loss_sum": float(loss.item()) * n,
            "correct": float((pred == yt).sum()),
            "count": float(n),
        }
        prob = _softmax(z)
        outputs = {"pred": pred, "true": yt, "confidence": prob[np.arange(n), pred]}
        return stats, outputs

    def metrics(self, stats: dict) -> dict[str, float]:
        n = max(stats.get("count", 0.0), 1.0)
        out = {"acc": stats.get("correct", 0.0) / n}
        if "loss_sum" in stats:
            out["loss"] = stats["loss_sum"] / n
        return out

    def previews(self, outputs: dict[str, np.ndarray], num_classes: int) -> dict[str, Any]:
        """``pred``, ``true``, ``confidence`` per validation sample (in validation order,
        so ``index[i]`` maps back to the dataset) and the confusion matrix."""
        if not outputs:
            return {}
        cm = confusion_matrix(outputs["true"], outputs["pred"], num_classes)
        return {**outputs, "confusion": cm}
