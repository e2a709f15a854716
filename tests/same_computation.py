"""One backend's side of the same-computation test (tests/test_same_computation.py): run in a
process of its own, since Keras runs one backend per process.

Reads an .npz with the data, the order of the batches and gradients for the optimizer
check, and the reference network's initial weights (or, with `--draw_weights`, draws them:
Keras with seed 0, and writes them to that file for the other backend). Writes, per variant,
`<out>-<variant>.npz` with, on this backend: the forward pass at the initial weights, one
Adam step applied to the given gradients (the optimizer alone), the loss of every update and
the weights after the first update and after the last. The variants `weight` and `batch`
change one thing on purpose (one initial weight by 1e-3, one series of the first batch), for
the test's negative controls.

    python tests/same_computation.py --backend jax --inputs in.npz --out jax --draw_weights \
        --variants same,weight,batch
"""

import argparse
import os
import sys
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--backend", required=True)
    parser.add_argument("--inputs", required=True)
    parser.add_argument("--out", required=True)
    parser.add_argument("--variants", default="same", help="same, weight, batch, comma-separated")
    parser.add_argument("--draw_weights", action="store_true")
    args = parser.parse_args()
    os.environ["KERAS_BACKEND"] = args.backend
    from pipeline import keras_backend

    keras_backend.activate(args.backend)
    import keras

    from pipeline.config import TrainConfig
    from pipeline.model import build_model

    given = dict(np.load(args.inputs))
    x, y = given["x"], given["y"]
    # dropout 0: its masks come from each backend's own random numbers, so with dropout the
    # two would differ by design; everything else is the reference network (pipeline/model.py)
    cfg = TrainConfig(dropout=0.0, backend=args.backend)
    if args.draw_weights:
        keras.utils.set_random_seed(0)
        drawn = build_model(x.shape[1], cfg).get_weights()
        given |= {f"w{i}": w for i, w in enumerate(drawn)} | {"n_weights": len(drawn)}
        np.savez(args.inputs, **given)
    for variant in args.variants.split(","):
        weights = [given[f"w{i}"].copy() for i in range(int(given["n_weights"]))]
        order = given["order"].copy()
        if variant == "weight":
            weights[0].flat[0] += 1e-3
        if variant == "batch":
            order[0, 0] = order[1, 0]  # one series of the first batch swapped for another
        out = run(cfg, weights, x, y, order, given)
        np.savez(f"{args.out}-{variant}.npz", n_weights=len(weights), **out)


def run(cfg, weights, x, y, order, given) -> dict[str, np.ndarray]:
    import keras

    from pipeline.model import build_model

    keras.utils.set_random_seed(0)
    model = build_model(x.shape[1], cfg)
    model.set_weights(weights)
    out = {"forward": np.asarray(model(x, training=False))}

    # the optimizer alone: one Adam step on fixed gradients
    optimizer = keras.optimizers.Adam(cfg.learning_rate)
    variables = [keras.Variable(w) for w in weights]
    optimizer.build(variables)
    grads = [keras.ops.convert_to_tensor(given[f"g{i}"]) for i in range(len(weights))]
    optimizer.apply(grads, variables)
    for i, v in enumerate(variables):
        out[f"adam{i}"] = np.asarray(keras.ops.convert_to_numpy(v))

    losses = []
    for step, batch in enumerate(order):
        losses.append(float(np.asarray(model.train_on_batch(x[batch], y[batch]))))
        if step == 0:
            for i, w in enumerate(model.get_weights()):
                out[f"first{i}"] = w
    for i, w in enumerate(model.get_weights()):
        out[f"last{i}"] = w
    return {"loss": np.array(losses), **out}


if __name__ == "__main__":
    main()
