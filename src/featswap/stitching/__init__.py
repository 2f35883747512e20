"""Stitching at any layer: an affine map of channels (a 1x1 convolution) from one network's activation at a
layer to another's, fitted without labels from streamed moments, evaluated by running the target's own later
layers on the mapped activation (a forward hook that replaces the target layer's output).

`layers` names and checks the layers, `taps` captures and replaces activations, `activations` turns them into
rows and resamples grids, `fitting` streams the moments and solves the maps, `evaluating` runs the swap test,
`run` ties them to a config and writes the outputs.
"""
