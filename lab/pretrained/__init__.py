"""pyfing's trained networks brought onto the runtime: weights converted from Keras to torch, once."""
