"""The reference network, built for any Keras 3 backend.

    Input(time_steps, 1) → LSTM(lstm_units) → Dense(dense_units, relu) → Dropout(dropout)
    → Dense(1, relu), compiled with Adam(learning_rate) on mean squared error.

With target_scale=max_freq the network learns f / max_freq and `with_output_scale` multiplies
its output back, so every prediction, metric and logged model is in frequency units.

The final relu is the original's choice and the cause of one failure mode: once every
pre-activation goes negative the output is stuck at 0 and no gradient flows back.
"""

import numpy as np

from pipeline.config import TrainConfig

# Series per predict() batch. On jax every new input shape compiles the predict function, so
# every prediction in a run (the model's logged example, both sets' scores) uses this size.
PREDICT_BATCH = 256


def build_model(time_steps: int, cfg: TrainConfig):
    import keras

    model = keras.Sequential(
        [
            keras.Input((time_steps, 1), name="series"),
            keras.layers.LSTM(cfg.lstm_units, name="lstm"),
            keras.layers.Dense(cfg.dense_units, activation="relu", name="hidden"),
            keras.layers.Dropout(cfg.dropout, name="dropout"),
            keras.layers.Dense(1, activation="relu", name="frequency"),
        ],
        name="sine_frequency_lstm",
    )
    model.compile(optimizer=keras.optimizers.Adam(cfg.learning_rate), loss="mse")
    return model


def predict(model, x: np.ndarray) -> np.ndarray:
    return np.asarray(model.predict(x, verbose=0, batch_size=PREDICT_BATCH))


def parameter_count(time_steps: int, cfg: TrainConfig) -> int:
    """Closed form, for checking the built model: LSTM 4·u·(u+1+1), then two Dense layers."""
    u, d = cfg.lstm_units, cfg.dense_units
    return 4 * u * (u + 1 + 1) + (u * d + d) + (d + 1)


def with_output_scale(model, scale: float):
    """`model` followed by a fixed multiplication by `scale`: a network trained on f / max_freq
    that predicts (and is logged as predicting) frequencies."""
    import keras

    inputs = keras.Input(model.input_shape[1:], name="series")
    outputs = keras.layers.Rescaling(scale, name="target_scale")(model(inputs))
    return keras.Model(inputs, outputs, name=f"{model.name}_scaled")
