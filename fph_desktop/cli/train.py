"""``fph-desktop train``, ``eval`` and ``encode``: the model's headless commands.

The model and training flags are generated from :class:`~fph_desktop.model.config.FPHConfig` and
:class:`~fph_desktop.train.config.TrainConfig` (see :mod:`.flags`); only what is not part of a run's
settings (where to write, resume or not, quiet) is declared here.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from ..errors import EXIT_PARTIAL, BadArgumentError, BadFileError, storage_error
from .flags import add_config_flags, add_engine_flag, config_from_args, positive_int
from .progress import ProgressPrinter


def check_output_file(path: Path, flag: str, must_be_weights: bool = False, parents_must_exist: bool = False) -> None:
    """Refuse, before any work, an output path that cannot be written or would destroy another file."""
    if path.is_dir():
        raise BadArgumentError(f"is a folder; {flag} needs a file name", path)
    if parents_must_exist and not path.parent.is_dir():
        raise BadArgumentError(f"cannot be written: the folder {path.parent} does not exist", path)
    for parent in path.parents:
        if parent.exists():
            if not parent.is_dir():
                raise BadArgumentError(f"cannot be created: {parent} is a file, not a folder", path)
            break
    if must_be_weights and path.exists() and path.suffix.lower() != ".fph":
        raise BadArgumentError(
            "exists and is not a weights file (.fph); it would be overwritten", path, "choose another name ending in .fph"
        )


def _backbone_weights(value: str | None):
    return None if value is None or value.lower() == "none" else value


def add_train_parser(subparsers) -> argparse.ArgumentParser:
    from ..model.config import FPHConfig
    from ..train.config import TrainConfig

    parser = subparsers.add_parser(
        "train",
        help="train FPH (or fit ITQ) on a labelled photo folder",
        description="Train FPH on a labelled photo folder, or fit unsupervised ITQ codes "
        "(--method itq). Rerunning an interrupted command resumes it.",
    )
    parser.add_argument("--out", help="weights file to write (default: in the app's model folder)")
    add_config_flags(parser.add_argument_group("model"), FPHConfig)
    add_config_flags(parser.add_argument_group("training"), TrainConfig)
    group = parser.add_argument_group("run")
    group.add_argument("--run-dir", help="checkpoint folder (default: derived from the settings, so reruns resume)")
    group.add_argument("--no-resume", action="store_true", help="start afresh even if an interrupted run exists")
    group.add_argument("--quiet", action="store_true", help="no progress on stderr")
    parser.set_defaults(func=cmd_train)
    return parser


def _default_output(args) -> Path:
    from .. import paths

    name = f"{Path(args.data).resolve().name}-{args.method}-{args.backbone}-{args.code_bits}bit.fph"
    return paths.data_dir() / "models" / name


def cmd_train(args) -> int:
    from ..model.config import FPHConfig
    from ..train.config import TrainConfig

    printer = ProgressPrinter(args.quiet)
    out = Path(args.out) if args.out else _default_output(args)
    check_output_file(out, "--out", must_be_weights=True)
    model = config_from_args(FPHConfig, args)
    config = config_from_args(TrainConfig, args, model=model, backbone_weights=_backbone_weights(args.backbone_weights))
    if model.method == "itq":
        return _fit_itq(config, out, printer)
    from ..train.trainer import train

    result = train(config, out, args.run_dir, printer.progress(), resume=not args.no_resume)
    if result.info is not None:
        print(f"wrote {out} ({result.info.describe()}, fingerprint {result.info.fingerprint})")
        if result.test_metrics:
            print(f"test mAP@all {result.test_metrics['map_all']:.4f}")
    if result.collapsed:
        print(
            "fph-desktop: warning: training collapsed: every photo gets the same code, so this model cannot tell "
            "photos apart; train again with a lower --lr or more epochs",
            file=sys.stderr,
        )
        return EXIT_PARTIAL
    return 0


def _fit_itq(config, out: Path, printer: ProgressPrinter) -> int:
    from ..data.layouts import LayoutError, load_labelled_folder
    from ..device import select_device
    from ..model.weights import save_weights
    from ..train.unsupervised import fit_itq_model

    progress = printer.progress()
    try:
        dataset = load_labelled_folder(config.data, config.test_fraction, config.seed, progress=progress)
        photos, classes, notes = [i.path for i in dataset.split("train")], dataset.classes, {"layout": dataset.layout}
    except LayoutError:  # no labels needed: every photo of an unlabelled folder
        if not Path(config.data).is_dir():
            raise
        from ..index.scanner import scan_folder

        photos = [Path(config.data) / f.relpath for f in scan_folder(config.data, progress).files]
        classes, notes = [], {"layout": "unlabelled folder"}
    model = fit_itq_model(
        photos,
        config.model.backbone,
        config.model.code_bits,
        config.backbone_weights,
        select_device(config.device),
        config.seed,
        progress=progress,
    )
    info = save_weights(out, model, classes, {"data": str(Path(config.data).resolve()), "method": "itq", **notes})
    print(f"wrote {out} ({info.describe()}, fingerprint {info.fingerprint})")
    return 0


def add_eval_parser(subparsers) -> None:
    parser = subparsers.add_parser("eval", help="mAP of a weights file on a labelled folder (query = test, database = train)")
    parser.add_argument("--model", required=True, help="weights file (.fph)")
    parser.add_argument("--data", required=True)
    parser.add_argument("--k", type=positive_int, action="append", help="cut-offs for mAP@k and precision@k (default 10, 100)")
    parser.add_argument("--json", metavar="FILE", help="also write all results, PR curve included, as JSON ('-' = stdout)")
    parser.add_argument("--device", default="auto")
    parser.add_argument("--test-fraction", type=float, default=0.3)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--quiet", action="store_true")
    add_engine_flag(parser)
    parser.set_defaults(func=cmd_eval)


def cmd_eval(args) -> int:
    from ..data.layouts import load_labelled_folder
    from ..device import select_device
    from ..evaluation.evaluate import evaluate_model, format_table
    from ..model.encoder import Encoder
    from ..model.weights import load_weights

    printer = ProgressPrinter(args.quiet)
    progress = printer.progress()
    if args.json and args.json != "-":
        check_output_file(Path(args.json), "--json", parents_must_exist=True)
    model, info = load_weights(args.model)
    encoder = Encoder(model, info, select_device(args.device), args.engine, source=args.model)
    dataset = load_labelled_folder(args.data, args.test_fraction, args.seed, progress=progress)
    results = evaluate_model(
        encoder.model, info.preprocessing, dataset, encoder.device, tuple(args.k or (10, 100)), workers=args.workers,
        progress=progress, encode=lambda pixels: encoder.encode_batch(pixels)[1],
    )  # fmt: skip
    results = {"model": str(args.model), "fingerprint": info.fingerprint, "data": str(dataset.root), **results}
    results["engine"] = encoder.describe_engine()
    print(f"{info.describe()} on {dataset.describe()}; engine: {results['engine']}")
    print(format_table(results))
    if args.json:
        text = json.dumps(results, indent=2)
        if args.json == "-":
            print(text)
        else:
            try:
                Path(args.json).write_text(text)
            except OSError as exc:
                raise (
                    storage_error(exc, args.json, "writing the results")
                    or BadFileError(f"cannot be written ({exc.strerror or exc})", args.json)
                ) from None
    return 0


def add_encode_parser(subparsers) -> None:
    parser = subparsers.add_parser("encode", help="print the binary code of each image")
    parser.add_argument("images", nargs="+")
    parser.add_argument("--model", required=True)
    parser.add_argument("--format", choices=["hex", "bits", "json"], default="hex")
    parser.add_argument("--device", default="auto")
    add_engine_flag(parser)
    parser.set_defaults(func=cmd_encode)


def add_export_parser(subparsers) -> None:
    parser = subparsers.add_parser(
        "export-graph",
        help="write a weights file's ONNX graph, which indexes and searches without PyTorch",
        description="Export MODEL (.fph) to an ONNX graph, verified against PyTorch, that carries the model's "
        "description: the search-only edition of the app (no PyTorch) loads it as a model.",
    )
    parser.add_argument("model", type=Path, help="a weights file (.fph)")
    parser.add_argument("--out", type=Path, help="where to write it (default: MODEL.onnx beside the weights)")
    parser.set_defaults(func=cmd_export_graph)


def cmd_export_graph(args) -> int:
    import shutil

    from ..errors import display_path
    from ..model.encoder import Encoder

    encoder = Encoder.load(args.model, "cpu", engine="onnx")  # exported (or reused) and verified
    target = args.out or args.model.with_name(args.model.name + ".onnx")
    if encoder.graph_path is None or not encoder.graph_path.is_file():
        raise BadFileError("could not be exported to an ONNX graph", args.model)
    if encoder.graph_path.resolve() != target.resolve():
        try:
            shutil.copyfile(encoder.graph_path, target)
        except OSError as exc:
            error = storage_error(exc, target, "writing the graph")
            if error is None:
                raise
            raise error from None
    size = target.stat().st_size / 1e6
    print(f"{display_path(target)}: {encoder.info.describe()}, {size:.1f} MB; load it in the search-only app as the model")
    return 0


def cmd_encode(args) -> int:
    from ..errors import EXIT_PARTIAL, display_path
    from ..imaging import ImageError, open_image
    from ..index.library import load_encoder

    encoder, _ = load_encoder(args.model, None, args.device, args.engine)
    failures, records = 0, []
    for path in args.images:
        try:
            image = open_image(path, min_side=encoder.decode_side)
        except ImageError as exc:
            print(f"fph-desktop: {exc}", file=sys.stderr)
            failures += 1
            records.append({"path": display_path(path), "code": None, "bits": encoder.code_bits, "error": exc.reason})
            continue
        packed, _ = encoder.encode_images([image])
        code = packed[0]
        text = code.tobytes().hex() if args.format != "bits" else "".join(f"{b:08b}" for b in code)
        records.append({"path": display_path(path), "code": code.tobytes().hex(), "bits": encoder.code_bits})
        if args.format != "json":
            print(f"{text}  {display_path(path)}")
    if args.format == "json":
        print(json.dumps({"model": args.model, "fingerprint": encoder.fingerprint, "codes": records}, indent=2))
    return EXIT_PARTIAL if failures else 0
