"""The engine: the network and its layers, activations, losses, and the backend
policy (buffers, and which kernel table runs) chosen once per run."""
