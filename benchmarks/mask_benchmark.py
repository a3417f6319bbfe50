"""Mask benchmark on each source's committed validation split: the project's classifier beside two yardsticks.

    .venv/bin/python benchmarks/mask_benchmark.py [--data DIR ...] [--out JSON]

Per source (default: the three shared face-mask sources; each missing one is skipped, saying so), the faces of its
validation split (`weights/mask_validation/<source>.txt`) are read as `eval-mask --validation` reads them: a photo
source's annotated boxes with the pipeline's 20% margin, a crop source's whole crops. Beside them: the model shipped
before this one (its figures on the same faces, from the card's `baseline`, measured by train-mask before it was
replaced), the `face-mask-detector` package (two classes, its 'mask' read as with_mask, the tight box resized to
224 as the package does), and the card's out-of-fold figures on the source's training photos (the class bias was
chosen on those, so they lean optimistic). Then, on the photo sources, the classifier with the pipeline's face
detector in front (`--detect`); on crop sources whose source.csv places the face, the faces cut close (no margin,
as tight crop sets come); and inference milliseconds per face, batched, for both models. Each source is judged
against the issue's targets as the card judges it (`sanitary.evaluation.mask_targets`). Prints a table and writes
JSON. The previous model's own figures on all of these: this script with SANITARY_WEIGHTS set to a folder holding
that model and its card (and the other weights).
"""

from __future__ import annotations

import argparse
import json
import platform
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path

import cv2
import numpy as np
import onnxruntime as ort

from sanitary.config import default_camera
from sanitary.evaluation.mask_eval import (
    MaskReport,
    by_image,
    crops_are_faces,
    evaluate,
    evaluate_detected,
    load_faces,
    report,
)
from sanitary.evaluation.mask_targets import TARGET_MS_PER_FACE, targets_met
from sanitary.evaluation.splits import SPLITS, source_name, split_file
from sanitary.evaluation.voc import AnnotatedFace, read_split
from sanitary.perception.mask_card import CARD_FILE, load_card
from sanitary.perception.mask_classes import LABELS, MaskClass
from sanitary.perception.masks import MaskClassifier, face_crops
from sanitary.perception.models import WEIGHTS_DIR, open_session

ROOT = Path(__file__).resolve().parents[1]
DATASETS = ROOT.parent / "shared" / "datasets"
SOURCES = ("facemask-andrewmvd", "facemask-extra-ilc2021", "facemask-extra-maskedfacenet")
BASELINE = "baselines/face_mask_detector.onnx"
TIMING_BATCH = 32


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, nargs="+", default=[DATASETS / name for name in SOURCES])
    parser.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "results" / "masks.json")
    return parser.parse_args(argv)


def baseline_crops(image: np.ndarray, boxes: np.ndarray) -> np.ndarray:
    """The face-mask-detector package's own preprocessing: tight box, RGB, 224x224, scaled to [-1, 1]."""
    h, w = image.shape[:2]
    out = np.empty((len(boxes), 224, 224, 3), np.float32)
    for i, (x1, y1, x2, y2) in enumerate(boxes.astype(int)):
        x1, y1, x2, y2 = max(x1, 0), max(y1, 0), min(x2, w - 1), min(y2, h - 1)
        face = cv2.cvtColor(image[y1:y2, x1:x2], cv2.COLOR_BGR2RGB)
        out[i] = cv2.resize(face, (224, 224)).astype(np.float32) / 127.5 - 1.0
    return out


def baseline_report(faces: list[AnnotatedFace]) -> MaskReport:
    """The baseline's readings in our three-class report; it never says mask_weared_incorrect."""
    session = open_session(BASELINE)
    truth, predicted = [], []
    for image_path, group in by_image(faces):
        image = cv2.imread(str(image_path))
        (probs,) = session.run(None, {"image": baseline_crops(image, np.array([f.box for f in group], np.float32))})
        predicted.extend(probs.argmax(axis=1).tolist())  # 0 mask -> with_mask, 1 no mask -> without_mask
        truth.extend(MaskClass.from_label(f.label) for f in group)
    return report(truth, predicted)


def ms_per_face(run: Callable[[np.ndarray], object], batch: np.ndarray, repeats: int = 20) -> float:
    run(batch)
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        run(batch)
        times.append(time.perf_counter() - t0)
    return 1000 * float(np.median(times)) / len(batch)


def timings(faces: list[AnnotatedFace]) -> dict[str, float]:
    sample = faces[:TIMING_BATCH]
    images = {f.image: cv2.imread(str(f.image)) for f in sample}
    ours = np.concatenate([face_crops(images[f.image], np.array([f.box], np.float32)) for f in sample])
    theirs = np.concatenate([baseline_crops(images[f.image], np.array([f.box], np.float32)) for f in sample])
    classifier = MaskClassifier(default_camera().masks)
    baseline = open_session(BASELINE)
    return {
        "ours_ms_per_face": ms_per_face(classifier.probabilities, ours),
        "baseline_ms_per_face": ms_per_face(lambda x: baseline.run(None, {"image": x}), theirs),
    }


def score_source(source: Path, faces: list[AnnotatedFace], card: dict) -> dict:
    """The figures of one source's validation faces."""
    masks, detection = default_camera().masks, default_camera().detection
    ours = evaluate(faces, masks, crops_are_faces=crops_are_faces(source))
    name = source_name(source)
    return {
        "data": str(source),
        "validation_list": str(split_file(SPLITS, source)),
        "faces": len(faces),
        "photos": len({f.group for f in faces}),
        "ours": ours.as_dict(),
        "targets": targets_met(ours),
        "ours_detect": None if crops_are_faces(source) else evaluate_detected(faces, masks, detection).as_dict(),
        "ours_close_cut": close_cut(faces),
        "previous_model": ((card.get("baseline") or {}).get("validation_by_source") or {}).get(name),
        "out_of_fold": card["cross_validation"].get("out_of_fold_by_source", {}).get(name),
        "face_mask_detector": baseline_report(faces).as_dict(),
    }


def close_cut(faces: list[AnnotatedFace]) -> dict | None:
    """A crop source's faces cut at the annotated face inside each crop with no margin, as tight crop sets come;
    None where the source does not say where the face is."""
    if not any(f.face_box for f in faces):
        return None
    tight = [AnnotatedFace(f.image, f.face_box, f.label) for f in faces if f.face_box]
    return evaluate(tight, default_camera().masks, crops_are_faces=True).as_dict()


def recall_text(figures: dict | None, name: str) -> str:
    return "-" if not figures or not figures["support"][name] else f"{figures['recall'][name]:.3f}"


def print_source(name: str, result: dict) -> None:
    ours = result["ours"]
    print(f"\n{name}: validation split, {result['faces']} faces of {result['photos']} photos")
    header = ("class", "faces", "recall (95%)", "precision", "F1", "out of fold", "previous", "face-mask-det.")
    print(
        f"{header[0]:24}{header[1]:>6}{header[2]:>20}{header[3]:>10}{header[4]:>7}"
        + "".join(f"{h:>15}" for h in header[5:])
    )
    for c in LABELS:
        s = ours["per_class"][c]
        if not s["support"]:
            continue
        recall = f"{s['recall']:.3f} ({s['recall_low']:.2f}-{s['recall_high']:.2f})"
        det = result["face_mask_detector"]["per_class"][c]
        others = (recall_text(result["out_of_fold"], c), recall_text(result["previous_model"], c))
        theirs = f"{det['recall']:.3f}" if c != "mask_weared_incorrect" else "n/a"
        print(f"{c:24}{s['support']:>6}{recall:>20}{s['precision']:>10.3f}{s['f1']:>7.3f}"
              + "".join(f"{v:>15}" for v in (*others, theirs)))  # fmt: skip
    previous = result["previous_model"] or {}
    print(f"macro-F1 {ours['macro_f1']:.3f} (previous {previous.get('macro_f1', float('nan')):.3f})  accuracy "
          f"{ours['accuracy']:.3f} (previous {previous.get('accuracy', float('nan')):.3f})  coverage "
          f"{ours['coverage']:.3f}")  # fmt: skip
    print(f"confusion (rows true; cols {', '.join(LABELS)}, unknown): {ours['confusion']}")
    if result["ours_close_cut"]:
        tight = result["ours_close_cut"]
        recalls = ", ".join(f"{c} {v['recall']:.3f}" for c, v in tight["per_class"].items() if v["support"])
        print(f"close cut (the annotated face inside each crop, no margin): accuracy {tight['accuracy']:.3f}, "
              f"unknown {1 - tight['coverage']:.3f}; recall {recalls}")  # fmt: skip
    if result["ours_detect"]:
        print("with the face detector first (--detect): found / annotated, classified right")
        for c, d in result["ours_detect"]["detect"].items():
            print(f"  {c:24}{d['found']:>5} / {d['annotated']:<5}{d['right']:>6}")
    t = result["targets"]
    goal = (
        f"recall >= {t['recall']}, macro-F1 >= {t['macro_f1']}"
        if t["judged_by"] == "recall"
        else f"accuracy >= {t['accuracy']} (unknown a miss)"
    )
    print(f"target ({goal}): {'met' if t['met'] else 'NOT MET'}")


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    card = json.loads((WEIGHTS_DIR / CARD_FILE).read_text())
    results: dict = {"model_sha256": load_card().sha256, "class_bias": card["decision"]["class_bias"], "sources": {}}
    timing_faces: list[AnnotatedFace] = []
    for source in args.data:
        if not source.is_dir():
            print(f"skipped {source}: not found (see ../shared/datasets/README.md)")
            continue
        faces = load_faces(source, read_split(split_file(SPLITS, source)))
        # Timed on faces cut from photos, as the pipeline cuts them.
        timing_faces = timing_faces or (faces if not crops_are_faces(source) else [])
        name = source_name(source)
        results["sources"][name] = score_source(source, faces, card)
        print_source(name, results["sources"][name])
    if not results["sources"]:
        return 0
    if timing_faces:
        t = results["timing"] = timings(timing_faces)
        ms = t["ours_ms_per_face"]
        print(f"\ninference, batch {TIMING_BATCH}: ours {ms:.2f} ms/face (target <= {TARGET_MS_PER_FACE}: "
              f"{'met' if ms <= TARGET_MS_PER_FACE else 'NOT MET'}), face-mask-detector "
              f"{t['baseline_ms_per_face']:.2f} ms/face")  # fmt: skip
    results["machine"] = {"platform": platform.platform(), "onnxruntime": ort.__version__}
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(results, indent=2))
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
