"""`tfslim:ARCH`: TF-slim's ImageNet networks as plain `torch.nn` modules, with Google's checkpoints.

`ops.py` (TF-slim's layers and TF's padding), `resnet_v2.py`, `inception_v3.py`, `inception_v4.py`,
`inception_resnet_v2.py`, `checkpoint.py` (reading TF checkpoints, TensorFlow imported there only),
`preprocessing.py` (`inception_preprocessing.preprocess_for_eval`), `family.py` (the SPECs).
"""
