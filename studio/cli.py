"""Command line: ``python main.py [gui] [PROJECT]``, ``python main.py train PROJECT ...``,
``python main.py info PROJECT``. The headless commands never import Qt."""

from __future__ import annotations

import argparse
import math
import os
import queue
import shutil
import sys
import tempfile
import time
from pathlib import Path

from studio.modelspec import format_shape, infer
from studio.project import SUFFIX, ProjectError, load_project, save_project


def _fmt_time(s: float) -> str:
    if not math.isfinite(s):
        return "--:--"
    s = int(s)
    return (
        f"{s // 3600}:{s // 60 % 60:02d}:{s % 60:02d}"
        if s >= 3600
        else f"{s // 60:02d}:{s % 60:02d}"
    )


def _num(v: object, digits: int = 4) -> str:
    """A metric for printing: missing (None, NaN, not a number) as "--"."""
    if isinstance(v, bool) or not isinstance(v, (int, float)) or not math.isfinite(v):
        return "--"
    return f"{v:.{digits}f}"


def progress_line(ev: dict, width: int) -> str:
    """One terminal line for a ``step`` event: a bar, epoch, step, loss, acc, speed, ETA."""
    done, total = ev.get("done_steps", 0), max(ev.get("total_steps", 1), 1)
    head = f"epoch {ev['epoch'] + 1} step {ev['step']:>6} "
    tail = (
        f" loss {ev['loss']:.4f} acc {ev['acc']:.3f} {ev['images_per_s']:7.0f} img/s "
        f"ETA {_fmt_time(ev['eta_s'])}"
    )
    bar_w = max(10, width - len(head) - len(tail) - 3)
    fill = int(bar_w * min(done / total, 1.0))
    return f"{head}[{'#' * fill}{'.' * (bar_w - fill)}]{tail}"


def default_out(path: Path) -> Path:
    """Where ``train`` writes: next to the project, ``<name>.trained.darkproj`` for JSON
    input, the same file for a ``.darkproj`` (written only when the run did not fail; the
    per-epoch checkpoint beside it is removed once the output is written)."""
    if path.suffix == SUFFIX:
        return path
    return path.with_name(path.stem + ".trained" + SUFFIX)


def out_problem(out: Path) -> str | None:
    """Why ``--out`` cannot hold the trained project, as one line, or None: only a
    ``.darkproj`` holds the weights (a ``.json`` is the settings alone), and a directory or a
    path under a missing one cannot be written."""
    if out.name in ("", ".", ".."):
        return f"--out {out}: give a file name ending in {SUFFIX}"
    if out.suffix != SUFFIX:
        return (
            f"--out {out}: the trained project is written as a {SUFFIX} file (weights, "
            f"optimizer state and history); a {out.suffix or 'name without suffix'} would "
            f"lose the weights. Use e.g. --out {out.with_suffix(SUFFIX).name}"
        )
    if out.is_dir():
        return f"--out {out}: is a directory; give a file name ending in {SUFFIX}"
    if not out.parent.is_dir():
        return f"--out {out}: the folder {out.parent} does not exist"
    if not os.access(out.parent, os.W_OK) or (out.exists() and not os.access(out, os.W_OK)):
        return f"--out {out}: cannot be written here (permissions)"
    return None


def _override(spec, args: argparse.Namespace) -> str | None:
    """Apply the command line's overrides to the spec; the first bad one as one line."""
    from pydantic import ValidationError

    if args.size is not None and spec.dataset.source != "procedural":
        return (
            f"--size: the dataset is the folder {spec.dataset.path}, whose images are all "
            "used; --size sets the size of procedural datasets"
        )
    for option, obj, name, value in (
        ("--epochs", spec.training, "epochs", args.epochs),
        ("--batch-size", spec.training, "batch_size", args.batch_size),
        ("--device", spec.training, "device", args.device),
        ("--size", spec.dataset, "size", args.size),
    ):
        if value is None:
            continue
        try:
            setattr(obj, name, value)
        except ValidationError as e:
            msg = e.errors()[0].get("msg", "invalid value") if e.errors() else "invalid value"
            return f"{option} {value}: {msg[:1].lower()}{msg[1:]}"
    if args.max_steps is not None and args.max_steps < 1:
        return f"--max-steps {args.max_steps}: must be at least 1"
    return None


def cmd_train(args: argparse.Namespace) -> int:
    # darklib: not for --help, info
    from studio.data import DataError
    from studio.trainer import Session, Trainer, fit_problem, loss_problem

    path = Path(args.project)
    out = Path(args.out) if args.out else default_out(path)
    bad = out_problem(out)
    if not bad and not args.out and out != path and out.exists():
        # a .json project's earlier result: training the settings again would replace it
        bad = (
            f"{out} holds an earlier run of this project: continue it with "
            f"'python main.py train {out}', or start afresh with --out NEW{SUFFIX}"
        )
    if bad:
        print(f"error: {bad}", file=sys.stderr)
        return 2
    try:
        proj = load_project(path)
    except ProjectError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    for note in proj.notes:
        print(f"note: {note}")
    spec = proj.spec
    bad = _override(spec, args)
    if bad:
        print(f"error: {bad}", file=sys.stderr)
        return 2
    problem = loss_problem(spec)
    if problem:
        print(f"error: {path}: {problem}", file=sys.stderr)
        return 2
    try:
        session = Session(proj)
        data = session.data  # read it now: a missing folder is an error before any training
        problem = fit_problem(spec, data.num_classes)
        if problem:
            raise DataError(problem)
    except (DataError, ProjectError, ValueError, RuntimeError) as e:
        print(f"error: {path}: {e}", file=sys.stderr)
        return 2
    events: queue.Queue = queue.Queue()
    ckpt = None if args.no_checkpoint else out.with_name(out.stem + ".checkpoint" + SUFFIX)
    trainer = Trainer(
        session,
        events,
        epochs=spec.training.epochs,
        checkpoint=ckpt,
        max_steps_per_epoch=args.max_steps,
    )
    tty = sys.stdout.isatty() and not args.quiet
    width = shutil.get_terminal_size((100, 20)).columns - 1
    print(
        f"training {spec.name!r} ({spec.task}) on {session.device} for "
        f"{spec.training.epochs} epochs; writing {out}"
    )
    t0 = time.perf_counter()
    trainer.start()
    last_print = 0.0
    reason = None
    status = 0
    wrote_ckpt = False
    try:
        while reason is None:
            try:
                ev = events.get(timeout=0.2)
            except queue.Empty:
                continue
            d = ev.data
            if ev.kind == "step":
                now = time.perf_counter()
                if tty and now - last_print > 0.1:
                    print("\r" + progress_line(d, width), end="", flush=True)
                    last_print = now
            elif ev.kind == "epoch":
                if tty:
                    print("\r" + " " * width + "\r", end="")
                print(
                    f"epoch {int(d['epoch'])}: train loss {d['train_loss']:.4f} acc "
                    f"{d['train_acc']:.3f} | val loss {d['val_loss']:.4f} acc "
                    f"{d['val_acc']:.3f} | {d['seconds']:.1f} s",
                    flush=True,
                )
            elif ev.kind == "checkpoint":
                wrote_ckpt = True
            elif ev.kind == "skipped":
                print(
                    ("\n" if tty else "")
                    + f"left out an unreadable image ({d['total']} so far): {d['reason']}",
                    flush=True,
                )
            elif ev.kind in ("log", "paused"):
                print(("\n" if tty else "") + d.get("text", d.get("reason", "")), flush=True)
                if ev.kind == "paused" and d.get("reason") != "user":
                    trainer.stop()  # no one can resume a headless run
                    status = 3
            elif ev.kind == "error":
                if d.get("traceback"):  # a bug: the details help to report it
                    print("\n" + d["traceback"].rstrip(), file=sys.stderr, flush=True)
                print(f"\nerror: {d['message']}", file=sys.stderr, flush=True)
                status = 1
            elif ev.kind == "finished":
                reason = d["reason"]
    except KeyboardInterrupt:
        print("\ninterrupted: stopping after this batch", flush=True)
        trainer.stop()
        trainer.join()
        status = 130
    trainer.join()
    secs = time.perf_counter() - t0
    if reason == "error" or status == 1:
        # the state after a failed step may be half updated: the project file keeps what it
        # had, and the last epoch's checkpoint (if any) is the newest good state
        kept = f"; the last epoch's checkpoint is {ckpt}" if wrote_ckpt else ""
        print(f"error in {secs:.1f} s; {out} was not written{kept}", file=sys.stderr)
        return status or 1
    try:
        save_project(session.snapshot(), out)
    except OSError as e:  # (a full disk, a folder made read-only meanwhile): keep the work
        spare = Path(tempfile.gettempdir()) / out.name
        save_project(session.snapshot(), spare)
        print(
            f"error: could not write {out} ({e}); the trained project is in {spare}",
            file=sys.stderr,
        )
        return 1
    if wrote_ckpt and ckpt is not None:
        ckpt.unlink(missing_ok=True)  # the output holds this state or a newer one
    print(f"{reason or 'stopped'} in {secs:.1f} s; wrote {out}")
    return status


def cmd_info(args: argparse.Namespace) -> int:
    try:
        proj = load_project(args.project)
    except ProjectError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    s = proj.spec
    for note in proj.notes:
        print(f"note: {note}")
    print(f"{s.name} ({s.task}): {s.description}")
    if s.dataset.source == "procedural":
        print(f"data: procedural {s.dataset.name}, {s.dataset.size} images")
    else:  # (the folder's own count: its size setting does not apply)
        print(f"data: {s.dataset.source} {s.dataset.path}")
    rep = infer(s.model)
    print(f"{'layer':<14}{'type':<18}{'output':<22}{'params':>10}")
    for li in rep.layers:
        note = f"  <- {li.error}" if li.error else ""
        print(f"{li.name:<14}{li.type:<18}{format_shape(li.out_shape):<22}{li.params:>10}{note}")
    print(f"total parameters: {rep.total_params:,}")
    h = proj.history.get("epochs", {}) if proj.history else {}
    if h.get("epoch"):
        accs = h.get("val_acc") or []
        print(
            f"trained {proj.position.get('epoch', 0)} epochs, {proj.position.get('step', 0)} "
            f"steps; last val acc {_num(accs[-1] if accs else None)}"
        )
    return 0


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="main.py",
        description="Dark Studio: a desktop training studio on darklib. Without a command the "
        "GUI opens (optionally on PROJECT).",
        epilog="Examples:\n  python main.py\n  python main.py projects/glyphs_mlp.json\n"
        "  python main.py train projects/objects_cnn.json --epochs 2 --out cnn.darkproj\n"
        "  python main.py info cnn.darkproj",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    sub = p.add_subparsers(dest="command", metavar="COMMAND")
    g = sub.add_parser("gui", help="open the studio window (the default)")
    g.add_argument("project", nargs="?", help="a .darkproj or project .json to open")
    t = sub.add_parser(
        "train",
        help="train a project headless with a terminal progress bar",
        description="Train PROJECT without a window and write the trained "
        "project file (weights, optimizer state, history).",
    )
    t.add_argument("project", help="a .darkproj or project .json")
    t.add_argument("--epochs", type=int, help="total epochs (default: the project's)")
    t.add_argument("--device", choices=["cpu", "cuda"], help="default: the project's")
    t.add_argument(
        "--out",
        help="output file, which must end in .darkproj (anything else is refused before "
        "training: only a .darkproj holds the weights); default: <project>.trained.darkproj, "
        "or the .darkproj itself",
    )
    t.add_argument("--batch-size", type=int, help="override the batch size")
    t.add_argument("--size", type=int, help="override the dataset size (procedural sources)")
    t.add_argument("--max-steps", type=int, help="cap batches per epoch (quick checks)")
    t.add_argument(
        "--no-checkpoint",
        action="store_true",
        help="do not write <out>.checkpoint.darkproj after each epoch",
    )
    t.add_argument("--quiet", action="store_true", help="no progress bar, epoch lines only")
    t.set_defaults(func=cmd_train)
    i = sub.add_parser("info", help="print a project's model table and training state")
    i.add_argument("project")
    i.set_defaults(func=cmd_info)
    return p


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    parser = build_parser()
    # a bare project path opens the GUI on it
    if argv and argv[0] not in ("gui", "train", "info") and not argv[0].startswith("-"):
        argv = ["gui", *argv]
    args = parser.parse_args(argv)
    if args.command in (None, "gui"):
        from studio.ui.app import run_gui  # Qt: only for the GUI

        return run_gui(getattr(args, "project", None))
    return args.func(args)
