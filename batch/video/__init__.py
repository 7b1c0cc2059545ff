"""Colouring videos: `reader` decodes grey frames (PyAV, in a thread), `pipeline` colours one
video through the engine's stages with chroma smoothing, `writer` encodes and muxes (audio
copied), `options` is the one record of how, and `phase` runs a batch's videos after its photos."""
