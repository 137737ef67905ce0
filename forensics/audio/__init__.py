"""Audio fingerprints: streamed decoding, spectral-peak landmarks, the persistent audio index."""
