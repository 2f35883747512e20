"""TF-slim's own graphs, built with TensorFlow for the tests: random weights and random batch-norm statistics,
saved as V1 and V2 checkpoints, run on preprocessed images.

tf-slim 1.1's `tf_slim.layers` imports `tf_keras.legacy_tf_layers`, which tf-keras 2.21 keeps under
`tf_keras/src/`: `import_slim` aliases those modules before importing tf_slim (a test-side shim only).
"""

from __future__ import annotations

import importlib
import os
import pkgutil
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")


def import_slim() -> tuple[Any, Any]:
    """(tensorflow, tf_slim) with the `legacy_tf_layers` alias in place."""
    import tensorflow as tf
    import tf_keras.src.legacy_tf_layers as legacy

    sys.modules.setdefault("tf_keras.legacy_tf_layers", legacy)
    for info in pkgutil.iter_modules(legacy.__path__):
        name = f"tf_keras.legacy_tf_layers.{info.name}"
        sys.modules.setdefault(name, importlib.import_module(f"tf_keras.src.legacy_tf_layers.{info.name}"))
    import tf_slim

    return tf, tf_slim


def randomize(tf: Any, session: Any, seed: int, shrink: tuple[str, float] | None = None) -> None:
    """Every variable random: kernels from TF-slim's initialiser (seeded by the graph) scaled by 0.5 to 1.5 per
    output (so deep nets stay finite), biases and betas N(0, 0.1), gammas U(0.5, 1.5), moving means N(0, 0.2),
    variances U(0.3, 2).
    `shrink = (suffix, factor)` multiplies the kernels whose name ends in `suffix` by `factor` too.

    One `session.run` reads the kernels and one assigns everything: a run per variable would prune the graph
    anew each time (minutes for ResNet-v2-200)."""
    rng = np.random.default_rng(seed)
    variables = tf.compat.v1.global_variables()
    kernels = [v for v in variables if v.op.name.endswith("/weights")]
    initial = dict(zip((v.op.name for v in kernels), session.run(kernels), strict=True))
    assigns, feeds = [], {}
    for variable in variables:
        name = variable.op.name
        shape = tuple(variable.shape)
        if name.endswith("/weights"):
            value = initial[name] * rng.uniform(0.5, 1.5, size=shape[-1]).astype(np.float32)
            if shrink is not None and name.endswith(shrink[0]):
                value = value * np.float32(shrink[1])
        elif name.endswith(("/biases", "/beta")):
            value = rng.normal(0, 0.1, shape)
        elif name.endswith("/gamma"):
            value = rng.uniform(0.5, 1.5, shape)
        elif name.endswith("/moving_mean"):
            value = rng.normal(0, 0.2, shape)
        elif name.endswith("/moving_variance"):
            value = rng.uniform(0.3, 2.0, shape)
        else:
            continue
        placeholder = tf.compat.v1.placeholder(tf.float32, shape)
        assigns.append(tf.compat.v1.assign(variable, placeholder))
        feeds[placeholder] = np.asarray(value, dtype=np.float32)
    session.run(assigns, feeds)


@dataclass
class SlimGraph:
    """A TF-slim network in its own graph and session, with its checkpoints."""

    graph: Any
    session: Any
    images: Any
    features: Any
    logits: Any
    v1: Path
    v2: Path

    def run(self, batch: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Images `(N, H, W, 3)` float32 -> (pooled features `(N, D)`, logits `(N, 1001)`)."""
        features, logits = self.session.run([self.features, self.logits], {self.images: batch})
        return features.reshape(len(batch), -1), logits.reshape(len(batch), -1)


def finish(
    tf: Any,
    graph: Any,
    images: Any,
    features: Any,
    logits: Any,
    folder: Path,
    seed: int,
    versions: tuple[int, ...] = (1, 2),
    shrink: tuple[str, float] | None = None,
) -> SlimGraph:
    """Randomise a built network (see `randomize`) and save it in the checkpoint `versions` asked for:
    `folder/v1.ckpt` (V1, with `global_step` and exponential moving averages beside the weights, as training leaves
    them) and `folder/v2.ckpt` (V2: `.index` + `.data-*`, the network's variables only)."""
    with graph.as_default():
        model_variables = tf.compat.v1.global_variables()
        tf.compat.v1.train.get_or_create_global_step()
        tf.compat.v1.train.ExponentialMovingAverage(0.999).apply(model_variables[:4])
        session = tf.compat.v1.Session(graph=graph)
        session.run(tf.compat.v1.global_variables_initializer())
        randomize(tf, session, seed, shrink)
        v1, v2 = folder / "v1.ckpt", folder / "v2.ckpt"
        if 1 in versions:
            tf.compat.v1.train.Saver(write_version=tf.compat.v1.train.SaverDef.V1).save(
                session, str(v1), write_meta_graph=False
            )
        if 2 in versions:
            tf.compat.v1.train.Saver(model_variables).save(session, str(v2), write_meta_graph=False)
    return SlimGraph(graph, session, images, features, logits, v1, v2)


def resnet_v2(
    depth: int, folder: Path, seed: int = 0, versions: tuple[int, ...] = (1, 2), residual: float = 1.0
) -> SlimGraph:
    """`tf_slim.nets.resnet_v2.resnet_v2_{depth}` (1001 classes, inference, any input size), random, saved (see
    `finish`). `residual` scales each unit's last kernel (`conv3`): without it the residual stream of random
    weights grows by a factor at every unit (to about 1e17 at depth 200), where the batch norms' offsets and
    epsilon no longer show."""
    tf, slim = import_slim()
    from tf_slim.nets import resnet_v2 as nets

    graph = tf.Graph()
    with graph.as_default():
        tf.compat.v1.set_random_seed(seed)  # TF's initialisers too: the same values every run
        images = tf.compat.v1.placeholder(tf.float32, [None, None, None, 3])  # any size
        with slim.arg_scope(nets.resnet_arg_scope()):
            logits, _ = getattr(nets, f"resnet_v2_{depth}")(images, num_classes=1001, is_training=False)
        features = graph.get_tensor_by_name(f"resnet_v2_{depth}/pool5:0")
    return finish(tf, graph, images, features, logits, folder, seed, versions, ("/conv3/weights", residual))


def inception_v3(folder: Path, seed: int = 0) -> SlimGraph:
    """`tf_slim.nets.inception_v3.inception_v3` (1001 classes, inference, with its `AuxLogits`), random, saved
    as V1 only, as Google's tarball has it (see `finish`). Features: the end point `PreLogits` (dropout is the
    identity in inference)."""
    tf, slim = import_slim()
    from tf_slim.nets import inception_v3 as nets

    graph = tf.Graph()
    with graph.as_default():
        tf.compat.v1.set_random_seed(seed)  # TF's initialisers too: the same values every run
        images = tf.compat.v1.placeholder(tf.float32, [None, None, None, 3])  # up to 362 px: one logits window
        with slim.arg_scope(nets.inception_v3_arg_scope()):
            logits, points = nets.inception_v3(images, num_classes=1001, is_training=False)
    return finish(tf, graph, images, points["PreLogits"], logits, folder, seed, versions=(1,))


def inception_resnet_v2(folder: Path, seed: int = 0, size: int = 299) -> SlimGraph:
    """TF-slim's Inception-ResNet-v2 (1001 classes, inference, with its `AuxLogits`) at `size` px, random, saved
    as V1 only (see `finish`). Features: the pooled 1536 before dropout.

    tf-slim's pip package has no Inception-ResNet-v2: `irv2_graph` builds it with tf_slim's layers as
    tensorflow/models `research/slim/nets/inception_resnet_v2.py` defines it (ReLU, `align_feature_maps=False`,
    `output_stride=16`, `inception_resnet_v2_arg_scope`'s defaults)."""
    tf, slim = import_slim()
    graph = tf.Graph()
    with graph.as_default():
        tf.compat.v1.set_random_seed(seed)  # TF's initialisers too: the same values every run
        images = tf.compat.v1.placeholder(tf.float32, [None, size, size, 3])  # AuxLogits needs a known size
        features, logits = irv2_graph(tf, slim, images)
    return finish(tf, graph, images, features, logits, folder, seed, versions=(1,))


def irv2_graph(tf: Any, slim: Any, images: Any) -> tuple[Any, Any]:
    """`inception_resnet_v2(images, num_classes=1001, is_training=False)` under
    `inception_resnet_v2_arg_scope()`, written with tf_slim's layers: (pooled features, logits)."""
    v1 = tf.compat.v1
    concat = lambda *nets: tf.concat(list(nets), 3)  # noqa: E731

    def residual(net: Any, branches: list[Any], scale: float, activation: Any) -> Any:
        mixed = concat(*branches)
        up = slim.conv2d(mixed, net.get_shape()[3], 1, normalizer_fn=None, activation_fn=None, scope="Conv2d_1x1")
        net = net + up * scale
        return activation(net) if activation else net

    def block35(net: Any, scale: float = 1.0, activation_fn: Any = tf.nn.relu, scope: Any = None) -> Any:
        with v1.variable_scope(scope, "Block35", [net]):
            with v1.variable_scope("Branch_0"):
                b0 = slim.conv2d(net, 32, 1, scope="Conv2d_1x1")
            with v1.variable_scope("Branch_1"):
                b1 = slim.conv2d(net, 32, 1, scope="Conv2d_0a_1x1")
                b1 = slim.conv2d(b1, 32, 3, scope="Conv2d_0b_3x3")
            with v1.variable_scope("Branch_2"):
                b2 = slim.conv2d(net, 32, 1, scope="Conv2d_0a_1x1")
                b2 = slim.conv2d(b2, 48, 3, scope="Conv2d_0b_3x3")
                b2 = slim.conv2d(b2, 64, 3, scope="Conv2d_0c_3x3")
            return residual(net, [b0, b1, b2], scale, activation_fn)

    def block17(net: Any, scale: float = 1.0, activation_fn: Any = tf.nn.relu, scope: Any = None) -> Any:
        with v1.variable_scope(scope, "Block17", [net]):
            with v1.variable_scope("Branch_0"):
                b0 = slim.conv2d(net, 192, 1, scope="Conv2d_1x1")
            with v1.variable_scope("Branch_1"):
                b1 = slim.conv2d(net, 128, 1, scope="Conv2d_0a_1x1")
                b1 = slim.conv2d(b1, 160, [1, 7], scope="Conv2d_0b_1x7")
                b1 = slim.conv2d(b1, 192, [7, 1], scope="Conv2d_0c_7x1")
            return residual(net, [b0, b1], scale, activation_fn)

    def block8(net: Any, scale: float = 1.0, activation_fn: Any = tf.nn.relu, scope: Any = None) -> Any:
        with v1.variable_scope(scope, "Block8", [net]):
            with v1.variable_scope("Branch_0"):
                b0 = slim.conv2d(net, 192, 1, scope="Conv2d_1x1")
            with v1.variable_scope("Branch_1"):
                b1 = slim.conv2d(net, 192, 1, scope="Conv2d_0a_1x1")
                b1 = slim.conv2d(b1, 224, [1, 3], scope="Conv2d_0b_1x3")
                b1 = slim.conv2d(b1, 256, [3, 1], scope="Conv2d_0c_3x1")
            return residual(net, [b0, b1], scale, activation_fn)

    batch_norm = {"decay": 0.9997, "epsilon": 0.001, "fused": None, "scale": False}
    regularizer = slim.l2_regularizer(0.00004)
    with (
        slim.arg_scope(
            [slim.conv2d, slim.fully_connected], weights_regularizer=regularizer, biases_regularizer=regularizer
        ),
        slim.arg_scope(
            [slim.conv2d], activation_fn=tf.nn.relu, normalizer_fn=slim.batch_norm, normalizer_params=batch_norm
        ),
        v1.variable_scope(None, "InceptionResnetV2", [images]),
        slim.arg_scope([slim.batch_norm, slim.dropout], is_training=False),
        slim.arg_scope([slim.conv2d, slim.max_pool2d, slim.avg_pool2d], stride=1, padding="SAME"),
    ):
        net = slim.conv2d(images, 32, 3, stride=2, padding="VALID", scope="Conv2d_1a_3x3")
        net = slim.conv2d(net, 32, 3, padding="VALID", scope="Conv2d_2a_3x3")
        net = slim.conv2d(net, 64, 3, scope="Conv2d_2b_3x3")
        net = slim.max_pool2d(net, 3, stride=2, padding="VALID", scope="MaxPool_3a_3x3")
        net = slim.conv2d(net, 80, 1, padding="VALID", scope="Conv2d_3b_1x1")
        net = slim.conv2d(net, 192, 3, padding="VALID", scope="Conv2d_4a_3x3")
        net = slim.max_pool2d(net, 3, stride=2, padding="VALID", scope="MaxPool_5a_3x3")
        with v1.variable_scope("Mixed_5b"):
            with v1.variable_scope("Branch_0"):
                b0 = slim.conv2d(net, 96, 1, scope="Conv2d_1x1")
            with v1.variable_scope("Branch_1"):
                b1 = slim.conv2d(net, 48, 1, scope="Conv2d_0a_1x1")
                b1 = slim.conv2d(b1, 64, 5, scope="Conv2d_0b_5x5")
            with v1.variable_scope("Branch_2"):
                b2 = slim.conv2d(net, 64, 1, scope="Conv2d_0a_1x1")
                b2 = slim.conv2d(b2, 96, 3, scope="Conv2d_0b_3x3")
                b2 = slim.conv2d(b2, 96, 3, scope="Conv2d_0c_3x3")
            with v1.variable_scope("Branch_3"):
                b3 = slim.avg_pool2d(net, 3, stride=1, padding="SAME", scope="AvgPool_0a_3x3")
                b3 = slim.conv2d(b3, 64, 1, scope="Conv2d_0b_1x1")
            net = concat(b0, b1, b2, b3)
        net = slim.repeat(net, 10, block35, scale=0.17, activation_fn=tf.nn.relu)
        with v1.variable_scope("Mixed_6a"):
            with v1.variable_scope("Branch_0"):
                b0 = slim.conv2d(net, 384, 3, stride=2, padding="VALID", scope="Conv2d_1a_3x3")
            with v1.variable_scope("Branch_1"):
                b1 = slim.conv2d(net, 256, 1, scope="Conv2d_0a_1x1")
                b1 = slim.conv2d(b1, 256, 3, scope="Conv2d_0b_3x3")
                b1 = slim.conv2d(b1, 384, 3, stride=2, padding="VALID", scope="Conv2d_1a_3x3")
            with v1.variable_scope("Branch_2"):
                b2 = slim.max_pool2d(net, 3, stride=2, padding="VALID", scope="MaxPool_1a_3x3")
            net = concat(b0, b1, b2)
        with slim.arg_scope([slim.conv2d], rate=1):
            net = slim.repeat(net, 20, block17, scale=0.10, activation_fn=tf.nn.relu)
        aux_input = net
        with v1.variable_scope("Mixed_7a"):
            with v1.variable_scope("Branch_0"):
                b0 = slim.conv2d(net, 256, 1, scope="Conv2d_0a_1x1")
                b0 = slim.conv2d(b0, 384, 3, stride=2, padding="VALID", scope="Conv2d_1a_3x3")
            with v1.variable_scope("Branch_1"):
                b1 = slim.conv2d(net, 256, 1, scope="Conv2d_0a_1x1")
                b1 = slim.conv2d(b1, 288, 3, stride=2, padding="VALID", scope="Conv2d_1a_3x3")
            with v1.variable_scope("Branch_2"):
                b2 = slim.conv2d(net, 256, 1, scope="Conv2d_0a_1x1")
                b2 = slim.conv2d(b2, 288, 3, scope="Conv2d_0b_3x3")
                b2 = slim.conv2d(b2, 320, 3, stride=2, padding="VALID", scope="Conv2d_1a_3x3")
            with v1.variable_scope("Branch_3"):
                b3 = slim.max_pool2d(net, 3, stride=2, padding="VALID", scope="MaxPool_1a_3x3")
            net = concat(b0, b1, b2, b3)
        net = slim.repeat(net, 9, block8, scale=0.20, activation_fn=tf.nn.relu)
        net = block8(net, activation_fn=None)
        net = slim.conv2d(net, 1536, 1, scope="Conv2d_7b_1x1")
        with v1.variable_scope("AuxLogits"):
            aux = slim.avg_pool2d(aux_input, 5, stride=3, padding="VALID", scope="Conv2d_1a_3x3")
            aux = slim.conv2d(aux, 128, 1, scope="Conv2d_1b_1x1")
            aux = slim.conv2d(aux, 768, aux.get_shape()[1:3], padding="VALID", scope="Conv2d_2a_5x5")
            aux = slim.fully_connected(slim.flatten(aux), 1001, activation_fn=None, scope="Logits")
        with v1.variable_scope("Logits"):
            net = slim.avg_pool2d(net, net.get_shape()[1:3], padding="VALID", scope="AvgPool_1a_8x8")
            features = slim.flatten(net)
            net = slim.dropout(features, 0.8, is_training=False, scope="Dropout")
            logits = slim.fully_connected(net, 1001, activation_fn=None, scope="Logits")
    return features, logits


def write_checkpoint(path: Path, arrays: dict[str, np.ndarray], version: int = 2) -> Path:
    """A TF checkpoint at prefix `path` holding `arrays` under their names."""
    tf, _ = import_slim()
    graph = tf.Graph()
    with graph.as_default():
        variables = {name: tf.compat.v1.Variable(value, name=name) for name, value in arrays.items()}
        saver_def = tf.compat.v1.train.SaverDef.V1 if version == 1 else tf.compat.v1.train.SaverDef.V2
        with tf.compat.v1.Session(graph=graph) as session:
            session.run(tf.compat.v1.global_variables_initializer())
            tf.compat.v1.train.Saver(variables, write_version=saver_def).save(
                session, str(path), write_meta_graph=False
            )
    return path


def read_checkpoint(path: Path) -> dict[str, np.ndarray]:
    """Every variable of a TF checkpoint, by name."""
    tf, _ = import_slim()
    reader = tf.train.load_checkpoint(str(path))
    return {name: reader.get_tensor(name) for name in reader.get_variable_to_shape_map()}


def tf_preprocess(image: np.ndarray, size: int) -> np.ndarray:
    """`inception_preprocessing.preprocess_for_eval(image, size, size)` (central fraction 0.875), its TF ops
    line for line: uint8 `(H, W, 3)` -> float32 `(size, size, 3)`."""
    tf, _ = import_slim()
    x = tf.image.convert_image_dtype(tf.constant(image), dtype=tf.float32)
    x = tf.image.central_crop(x, central_fraction=0.875)
    x = tf.compat.v1.image.resize_bilinear(tf.expand_dims(x, 0), [size, size], align_corners=False)
    x = tf.squeeze(x, [0])
    return np.asarray(tf.multiply(tf.subtract(x, 0.5), 2.0))
