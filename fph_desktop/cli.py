"""The ``fph-desktop`` command: the app when run bare, headless subcommands otherwise.

Every subcommand drives the same Qt-free core as the GUI; the progress it prints comes from the same
:class:`~fph_desktop.progress.Progress` the GUI's workers turn into signals.
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from . import __version__


class _ProgressPrinter:
    """Status lines and a one-line progress counter on stderr, for a terminal."""

    def __init__(self, quiet: bool = False) -> None:
        self.quiet = quiet

    def progress(self):
        from .progress import Progress

        return Progress(on_status=self._status, on_progress=self._progress, on_partial=self._partial, min_interval=0.5)

    def _status(self, text: str) -> None:
        if not self.quiet:
            print(f"\n{text}" if sys.stderr.isatty() else text, file=sys.stderr, flush=True)

    def _progress(self, done: int, total: int) -> None:
        if not self.quiet and sys.stderr.isatty():
            print(f"\r  {done}/{total}", end="", file=sys.stderr, flush=True)

    def _partial(self, record) -> None:
        if self.quiet or not isinstance(record, dict) or record.get("kind") != "epoch":
            return
        print(
            f"epoch {record['epoch']}/{record['epochs']}  loss {record['loss']:.4f}  val mAP {record['val_map']:.4f}  "
            f"({record['seconds']:.1f} s)",
            file=sys.stderr, flush=True,
        )


def _add_model_options(parser: argparse.ArgumentParser) -> None:
    from .model.backbones import BACKBONES
    from .model.config import FUSIONS, STRUCTURES, FPHConfig

    default = FPHConfig()
    group = parser.add_argument_group("model")
    group.add_argument("--method", choices=["fph", "itq"], default="fph", help="fph: train; itq: unsupervised codes, no labels used")
    group.add_argument("--backbone", choices=list(BACKBONES), default=default.backbone,
                       help=f"default {default.backbone} (its weights ship with the app; the ResNets' download once)")
    group.add_argument("--backbone-weights", default="imagenet", metavar="imagenet|none|FILE",
                       help="pretrained ImageNet weights (default), a local state-dict file, or none (random init)")
    group.add_argument("--bits", type=int, default=default.code_bits, help="code length, 8..256 in multiples of 8 (default 48)")
    group.add_argument("--image-size", type=int, default=default.image_size)
    group.add_argument("--fusion", choices=FUSIONS, default="mean", help="consensus fusion of the low layers")
    group.add_argument("--structure", choices=STRUCTURES, default="spp", help="spatial structure of the horizontal pyramid")
    group.add_argument("--vertical", action=argparse.BooleanOptionalAction, default=default.use_vertical,
                       help="the vertical pyramid (semantics)")
    group.add_argument("--vertical-levels", nargs="+", default=list(default.vertical_levels), metavar="Cn",
                       help=f"stages of the vertical pyramid (default {' '.join(default.vertical_levels)})")
    group.add_argument("--horizontal", action=argparse.BooleanOptionalAction, default=default.use_horizontal,
                       help="the horizontal pyramid over the low layers (the paper's; off by default: on a frozen "
                            "backbone it costs mAP, see benchmarks/README.md)")
    group.add_argument("--no-aux-heads", action="store_true")
    group.add_argument("--horizontal-width", type=int, default=default.horizontal_width)
    group.add_argument("--head-hidden", type=int, default=default.head_hidden, help="hash head's hidden width (0: linear head)")
    group.add_argument("--head-dropout", type=float, default=default.head_dropout)


def _model_config(args):
    from .model import FPHConfig

    return FPHConfig(
        method=args.method, backbone=args.backbone, code_bits=args.bits, image_size=args.image_size,
        fusion=args.fusion, structure=args.structure, use_vertical=args.vertical, vertical_levels=tuple(args.vertical_levels),
        use_horizontal=args.horizontal, aux_heads=not args.no_aux_heads, head_hidden=args.head_hidden,
        head_dropout=args.head_dropout, horizontal_width=args.horizontal_width,
    )


def _backbone_weights(value: str):
    return None if value.lower() == "none" else value


def add_train_parser(subparsers) -> argparse.ArgumentParser:
    from .train.config import TrainConfig
    from .train.losses import LOSSES

    default = TrainConfig(data="")
    parser = subparsers.add_parser("train", help="train FPH (or fit ITQ) on a labelled photo folder")
    parser.add_argument("--data", required=True, help="labelled folder, CUB-200-2011 or Stanford Dogs root")
    parser.add_argument("--out", help="weights file to write (default: in the app's model folder)")
    _add_model_options(parser)
    group = parser.add_argument_group("training")
    group.add_argument("--mode", choices=["auto", "fast", "full"], default="auto",
                       help="fast: frozen backbone on cached features (CPU); full: fine-tune all (GPU); auto picks")
    group.add_argument("--epochs", type=int, default=0, help="0: the mode's default")
    group.add_argument("--steps-per-epoch", type=int, default=0)
    group.add_argument("--loss", choices=LOSSES, default=default.loss,
                       help="cosine: normalised softmax over the codes (default; best on validation); softmax; triplet (the reading's); DPSH")
    group.add_argument("--views", type=int, default=default.views,
                       help="fast mode: cached views of each training photo (centre crop + random resized crops)")
    group.add_argument("--optimizer", choices=["auto", "sgd", "adamw"], default="auto",
                       help="auto: AdamW in fast mode, SGD (momentum 0.9) for full fine-tuning")
    group.add_argument("--lr", type=float, default=0.0, help="0: 1e-3 for AdamW, 0.01 for SGD")
    group.add_argument("--classes-per-batch", type=int, default=default.classes_per_batch, metavar="P",
                       help="0: the mode's default (fast 64, full 16)")
    group.add_argument("--images-per-class", type=int, default=default.images_per_class, metavar="K")
    group.add_argument("--val-fraction", type=float, default=default.val_fraction)
    group.add_argument("--test-fraction", type=float, default=default.test_fraction, help="for a single folder of class sub-folders")
    group.add_argument("--seed", type=int, default=default.seed)
    group.add_argument("--device", default="auto", help="auto, cpu, cuda, cuda:N or mps")
    group.add_argument("--no-amp", action="store_true")
    group.add_argument("--workers", type=int, default=2)
    group.add_argument("--run-dir", help="checkpoint folder (default: derived from the settings, so reruns resume)")
    group.add_argument("--no-resume", action="store_true", help="start afresh even if an interrupted run exists")
    group.add_argument("--quiet", action="store_true")
    parser.set_defaults(func=cmd_train)
    return parser


def _default_output(args) -> Path:
    from . import paths

    name = f"{Path(args.data).resolve().name}-{args.method}-{args.backbone}-{args.bits}bit.fph"
    return paths.data_dir() / "models" / name


def cmd_train(args) -> int:
    from .progress import Cancelled

    printer = _ProgressPrinter(args.quiet)
    out = Path(args.out) if args.out else _default_output(args)
    config = _model_config(args)
    try:
        if args.method == "itq":
            return _fit_itq(args, config, out, printer)
        from .train.config import TrainConfig
        from .train.trainer import train

        train_config = TrainConfig(
            data=args.data, model=config, mode=args.mode, backbone_weights=_backbone_weights(args.backbone_weights),
            epochs=args.epochs, steps_per_epoch=args.steps_per_epoch, loss=args.loss, optimizer=args.optimizer, lr=args.lr,
            views=args.views,
            classes_per_batch=args.classes_per_batch, images_per_class=args.images_per_class,
            val_fraction=args.val_fraction, test_fraction=args.test_fraction, seed=args.seed, device=args.device,
            amp=not args.no_amp, workers=args.workers,
        )
        result = train(train_config, out, args.run_dir, printer.progress(), resume=not args.no_resume)
    except Cancelled:
        print("cancelled; run the same command again to resume", file=sys.stderr)
        return 130
    if result.info is not None:
        print(f"wrote {out} ({result.info.describe()}, fingerprint {result.info.fingerprint})")
        if result.test_metrics:
            print(f"test mAP@all {result.test_metrics['map_all']:.4f}")
    return 0


def _fit_itq(args, config, out: Path, printer) -> int:
    from .data.layouts import load_labelled_folder
    from .device import select_device
    from .model.weights import save_weights
    from .train.unsupervised import fit_itq_model

    progress = printer.progress()
    dataset = load_labelled_folder(args.data, args.test_fraction, args.seed, progress=progress)
    model = fit_itq_model(
        [i.path for i in dataset.split("train")], args.backbone, args.bits, _backbone_weights(args.backbone_weights),
        select_device(args.device), args.seed, progress=progress,
    )
    info = save_weights(out, model, dataset.classes, {"data": str(dataset.root), "method": "itq", "layout": dataset.layout})
    print(f"wrote {out} ({info.describe()}, fingerprint {info.fingerprint})")
    return 0


def add_eval_parser(subparsers) -> None:
    parser = subparsers.add_parser("eval", help="mAP of a weights file on a labelled folder (query = test, database = train)")
    parser.add_argument("--model", required=True, help="weights file (.fph)")
    parser.add_argument("--data", required=True)
    parser.add_argument("--k", type=int, action="append", help="cut-offs for mAP@k and precision@k (default 10, 100)")
    parser.add_argument("--json", metavar="FILE", help="also write all results, PR curve included, as JSON ('-' = stdout)")
    parser.add_argument("--device", default="auto")
    parser.add_argument("--test-fraction", type=float, default=0.3)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--quiet", action="store_true")
    parser.set_defaults(func=cmd_eval)


def cmd_eval(args) -> int:
    from .data.layouts import load_labelled_folder
    from .device import select_device
    from .evaluation.evaluate import evaluate_model, format_table
    from .model.weights import load_weights

    printer = _ProgressPrinter(args.quiet)
    progress = printer.progress()
    model, info = load_weights(args.model)
    dataset = load_labelled_folder(args.data, args.test_fraction, args.seed, progress=progress)
    results = evaluate_model(
        model, info.preprocessing, dataset, select_device(args.device), tuple(args.k or (10, 100)), workers=args.workers,
        progress=progress,
    )
    results = {"model": str(args.model), "fingerprint": info.fingerprint, "data": str(dataset.root), **results}
    print(f"{info.describe()} on {dataset.describe()}")
    print(format_table(results))
    if args.json:
        text = json.dumps(results, indent=2)
        if args.json == "-":
            print(text)
        else:
            Path(args.json).write_text(text)
    return 0


def add_encode_parser(subparsers) -> None:
    parser = subparsers.add_parser("encode", help="print the binary code of each image")
    parser.add_argument("images", nargs="+")
    parser.add_argument("--model", required=True)
    parser.add_argument("--format", choices=["hex", "bits", "json"], default="hex")
    parser.add_argument("--device", default="auto")
    parser.set_defaults(func=cmd_encode)


def cmd_encode(args) -> int:
    from .imaging import ImageError, open_image
    from .model.encoder import Encoder

    encoder = Encoder.load(args.model, args.device)
    failures, records = 0, []
    for path in args.images:
        try:
            image = open_image(path, min_side=encoder.decode_side)
        except ImageError as exc:
            print(f"error: {exc}", file=sys.stderr)
            failures += 1
            continue
        packed, _ = encoder.encode_images([image])
        code = packed[0]
        text = code.tobytes().hex() if args.format != "bits" else "".join(f"{b:08b}" for b in code)
        records.append({"path": path, "code": code.tobytes().hex(), "bits": encoder.code_bits})
        if args.format != "json":
            print(f"{text}  {path}")
    if args.format == "json":
        print(json.dumps({"model": args.model, "fingerprint": encoder.fingerprint, "codes": records}, indent=2))
    return 1 if failures else 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="fph-desktop",
        description="Find fine-grained look-alikes in your photo folders. Without a subcommand, opens the app.",
    )
    parser.add_argument("--version", action="version", version=f"fph-desktop {__version__}")
    subparsers = parser.add_subparsers(title="headless commands", metavar="COMMAND")
    add_train_parser(subparsers)
    add_eval_parser(subparsers)
    add_encode_parser(subparsers)
    try:
        from .index.cli import register
    except ImportError:  # the index package arrives with its own issue
        register = None
    if register is not None:
        register(subparsers)
    return parser


SUBCOMMANDS = ("train", "eval", "encode", "index", "search")


def photos_for_the_app(argv: list[str]) -> list[str] | None:
    """``fph-desktop PHOTO…`` opens the app and searches with them; None when argv is a command."""
    if not argv or argv[0] in SUBCOMMANDS or argv[0].startswith("-"):
        return None
    return argv if all(Path(a).exists() for a in argv) else None


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    photos = photos_for_the_app(argv)
    if not argv or photos:
        # The app first: building the parser imports the model registry (torch), which the window
        # must not wait for.
        try:
            from .gui.app import run_app
        except ImportError as exc:
            print(f"fph-desktop: the desktop app cannot start ({exc}); the headless commands still work:", file=sys.stderr)
            build_parser().print_help()
            return 1
        return run_app(queries=photos)
    parser = build_parser()
    args = parser.parse_args(argv)
    if not hasattr(args, "func"):
        parser.print_help()
        return 2
    from .imaging import ImageError
    from .model.backbones import BackboneWeightsError
    from .model.weights import WeightsError

    try:
        return int(args.func(args) or 0)
    except (WeightsError, BackboneWeightsError, ImageError, ValueError, OSError) as exc:
        print(f"fph-desktop: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
