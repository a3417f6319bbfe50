"""Commands about the project's own models: scoring the mask model (eval-mask), training it (train-mask), training
the head model (train-crowd); training needs the training extra."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from rich.table import Table

from sanitary.cli.common import console, friendly, plain_console
from sanitary.errors import SanitaryError
from sanitary.perception.models import WEIGHTS_DIR

if TYPE_CHECKING:
    from sanitary.evaluation.mask_eval import MaskReport


@friendly
def eval_mask(
    data: Annotated[
        list[Path],
        typer.Argument(help="VOC folders or folders of face crops in class subfolders; each is scored on its own."),
    ],
    as_json: Annotated[bool, typer.Option("--json", help="The report as JSON on stdout.")] = False,
    detect: Annotated[bool, typer.Option("--detect", help="Find faces with the face detector first.")] = False,
    only: Annotated[
        list[Path] | None,
        typer.Option("--only", help="File of image names to keep, e.g. a validation split; repeat for several."),
    ] = None,
    validation: Annotated[
        bool, typer.Option("--validation", help="Keep each folder's validation split of the shipped model.")
    ] = False,
    camera: Annotated[Path | None, typer.Option("--camera", help="Camera config for the thresholds.")] = None,
) -> None:
    """Score the mask classifier: per-class precision/recall/F1, confusion, macro-F1, accuracy, coverage."""
    from sanitary.config import default_camera, load_camera
    from sanitary.evaluation.mask_eval import crops_are_faces, evaluate, evaluate_detected, load_faces
    from sanitary.evaluation.splits import SPLITS, source_name, split_file
    from sanitary.evaluation.voc import read_split

    if validation and only:
        raise SanitaryError("--validation and --only both choose the faces: give one of them")
    cam = load_camera(camera) if camera else default_camera()
    kept = set().union(*(read_split(path) for path in only)) if only else None
    # Every folder and list is read before the first face is scored, so a typo costs no waiting.
    sources = []
    for folder in data:
        names = kept
        if validation:
            split = split_file(SPLITS, folder)
            if not split.is_file():
                raise SanitaryError(
                    f"{folder}: the shipped model has no validation split for a folder of this name ({split} is "
                    "missing); drop --validation or give --only"
                )
            names = read_split(split)
        sources.append((folder, load_faces(folder, names)))
    results = []
    for folder, faces in sources:
        if detect:
            results.append(evaluate_detected(faces, cam.masks, cam.detection))
        else:
            results.append(evaluate(faces, cam.masks, crops_are_faces=crops_are_faces(folder)))
    if as_json:
        document = (
            results[0].as_dict()
            if len(results) == 1
            else {"sources": [{"data": str(f), **r.as_dict()} for (f, _), r in zip(sources, results, strict=True)]}
        )
        sys.stdout.write(json.dumps(document, indent=2) + "\n")
        return
    for (folder, _), result in zip(sources, results, strict=True):
        _print_mask_report(result, source_name(folder) if len(results) > 1 else None)


def _print_mask_report(result: MaskReport, source: str | None) -> None:
    out = plain_console()
    scores = Table(title="mask classifier" + (f": {source}" if source else ""))
    for column in ("class", "precision", "recall (95%)", "F1", "support"):
        scores.add_column(column, justify="left" if column == "class" else "right")
    for name, s in result.per_class.items():
        recall = f"{s.recall:.3f} ({s.recall_low:.2f}-{s.recall_high:.2f})"
        scores.add_row(name, f"{s.precision:.3f}", recall, f"{s.f1:.3f}", str(s.support))
    out.print(scores)
    confusion = Table(title="confusion (rows: true)")
    confusion.add_column("true \\ predicted")
    for name in (*result.classes, "unknown"):
        confusion.add_column(name, justify="right")
    for name, row in zip(result.classes, result.confusion, strict=True):
        confusion.add_row(name, *map(str, row))
    out.print(confusion)
    out.print(f"macro-F1 {result.macro_f1:.3f}   accuracy {result.accuracy:.3f}   coverage {result.coverage:.3f}")
    for name, d in (result.detect or {}).items():
        out.print(f"{name}: {d['found']} of {d['annotated']} faces found, {d['right']} classified right")


@friendly
def train_mask(
    data: Annotated[
        list[Path],
        typer.Argument(help="Training sources: VOC folders (images/, annotations/) and folders of class-folder crops."),
    ],
    out: Annotated[Path, typer.Option("--out", help="Where the ONNX model and its card go.")] = WEIGHTS_DIR,
    splits: Annotated[
        Path, typer.Option("--splits", help="Folder of each source's validation list (<folder name>.txt).")
    ] = WEIGHTS_DIR / "mask_validation",
    epochs: Annotated[int, typer.Option("--epochs", min=1, help="The shipped model: see its card.")] = 20,
    folds: Annotated[
        int, typer.Option("--folds", min=2, help="Cross-validation folds that choose the bias and mirror average.")
    ] = 4,
    limit: Annotated[
        int | None, typer.Option("--limit", help="Use only the first N photos of each source (a quick check).")
    ] = None,
    seed: Annotated[int, typer.Option("--seed")] = 0,
    threads: Annotated[int, typer.Option("--threads", min=1)] = 2,
) -> None:
    """Train the three-class mask classifier from an ImageNet MobileNetV2 and export it to ONNX."""
    # Imported here: torch is only in the training extra, and the module says how to install it when absent.
    from sanitary.train.mask_classifier import train

    out.mkdir(parents=True, exist_ok=True)
    card = train(data, out, splits, epochs, limit, seed, threads, folds)
    console.print(json.dumps(card.get("validation_by_source", {}), indent=2))


@friendly
def train_crowd(
    data: Annotated[
        list[Path],
        typer.Argument(
            help="Sources of photos with every head marked: images/ and counts.csv, with points.csv (image,x,y) "
            "or heads.csv (image,x1,y1,x2,y2); each needs its committed lists in weights/head_splits/<folder>/."
        ),
    ],
    out: Annotated[Path, typer.Option("--out", help="Where the ONNX model and its card go.")] = WEIGHTS_DIR,
    epochs: Annotated[int, typer.Option("--epochs", min=1, help="The shipped model: see its card.")] = 40,
    limit: Annotated[
        int | None, typer.Option("--limit", min=1, help="Use only the first N photos of each part (a quick check).")
    ] = None,
    init: Annotated[
        Path | None,
        typer.Option(
            "--init", help="Start from an earlier head model (ONNX of this architecture), not ImageNet alone."
        ),
    ] = None,
    lr_scale: Annotated[
        float,
        typer.Option(
            "--lr-scale", min=0.001, help="Multiply the learning rates: below 1 to fine-tune an --init model."
        ),
    ] = 1.0,
    seed: Annotated[int, typer.Option("--seed")] = 0,
    threads: Annotated[int, typer.Option("--threads", min=1)] = 2,
) -> None:
    """Train the head model (head points and sizes) from an ImageNet MobileNetV2 and export it to ONNX."""
    from sanitary.train.crowd_heads import train

    # Runs tried before: those of the card already in --out, else those of the shipped model.
    earlier = out / "head_points.json" if (out / "head_points.json").is_file() else WEIGHTS_DIR / "head_points.json"
    card = train(data, out, epochs, limit, seed, threads, init=init, lr_scale=lr_scale, earlier_card=earlier)
    console.print(json.dumps(card["validation"], indent=2))
